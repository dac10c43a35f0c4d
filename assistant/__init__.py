"""OpenVINO Performance Assistant: cited answers and live benchmarks, locally."""

__version__ = "0.1.0"

"""OpenVINO Performance Assistant: cited answers and live benchmarks, locally."""

import os as _os

__version__ = "0.1.0"

# transformers builds the embedder export and the catalog workloads; its advice to model trainers
# ("`loss_type=None` was set in the config ...") and its weight-loading bars are noise in the server
# log and the benchmark progress. Set before transformers is imported; child processes inherit it.
_os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
_os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

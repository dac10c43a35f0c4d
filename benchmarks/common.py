"""Shared helpers of the benchmark suite: statistics, timing, machine and version info."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import resource
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "benchmarks" / "results"


def summary(samples: Sequence[float], *, digits: int = 3) -> dict[str, Any]:
    """n, median, p10, p90 (plus p95, p99, mean, min, max) of a list of numbers."""
    arr = np.asarray([s for s in samples if s is not None], dtype=np.float64)
    if arr.size == 0:
        return {"n": 0}
    p10, p50, p90, p95, p99 = np.percentile(arr, [10, 50, 90, 95, 99])
    out = {"n": int(arr.size), "median": p50, "p10": p10, "p90": p90, "p95": p95, "p99": p99,
           "mean": arr.mean(), "min": arr.min(), "max": arr.max()}
    return {k: (v if k == "n" else round(float(v), digits)) for k, v in out.items()}


def time_calls(fn: Callable[[], Any], runs: int, warmup: int = 3) -> list[float]:
    """Milliseconds of `runs` calls of fn after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def interleaved(fns: dict[str, Callable[[], Any]], runs: int, warmup: int = 3, block: int = 5
                ) -> dict[str, list[float]]:
    """Time several functions alternately in blocks (A×block, B×block, B, A, ...), so background
    load hits all of them alike; returns milliseconds per name."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    samples: dict[str, list[float]] = {name: [] for name in fns}
    names = list(fns)
    turn = 0
    while min(len(v) for v in samples.values()) < runs:
        order = names if turn % 2 == 0 else names[::-1]
        for name in order:
            samples[name].extend(time_calls(fns[name], min(block, runs - len(samples[name])), warmup=0))
        turn += 1
    return samples


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux ru_maxrss is in KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def rss_mb() -> float:
    """Current resident memory of this process."""
    import psutil

    return round(psutil.Process().memory_info().rss / 2**20, 1)


def version(package: str) -> str | None:
    """Installed version of a distribution, or None."""
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


PACKAGES = ("openvino", "openvino-genai", "openvino-tokenizers", "torch", "transformers",
            "sentence-transformers", "faiss-cpu", "bm25s", "nncf", "llama-cpp-python", "gguf", "numpy")


def cpu_flags() -> list[str]:
    """The ISA extensions that matter for these workloads."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    flags = next((ln.split(":", 1)[1].split() for ln in text.splitlines() if ln.startswith("flags")), [])
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "avx512_fp16", "amx_tile",
              "amx_int8", "amx_bf16")
    return [f for f in wanted if f in flags]


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on: CPU, cores, memory, load, package versions."""
    import psutil

    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "logical_cores": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "isa": cpu_flags(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "load_avg": [round(x, 2) for x in os.getloadavg()],
        "os": platform.platform(),
        "python": platform.python_version(),
        "versions": {p: version(p) for p in PACKAGES},
    }

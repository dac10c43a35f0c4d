"""run_benchmark vs a direct benchmark_app run on the same cached IR, back to back.

For each configuration the tool and a hand-written benchmark_app command with the
same flags run alternately (A B, B A, ...), `--repeats` times each; medians are
compared. Also reports INT8 vs FP32 for resnet-50 and, because CPUs with AMX run
FP32 IRs in bf16 by default, a direct run with ``-infer_precision f32``.

    python benchmarks/tool_overhead.py [--seconds 5] [--repeats 3]

Writes benchmarks/results/tool_overhead.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from assistant.config import PROJECT_ROOT as ROOT
from assistant.config import Settings
from assistant.tools.base import ToolContext
from assistant.tools.benchmark import benchmark_app_path, run_benchmark
from assistant.tools.sysinfo import system_info
from assistant.tools.workloads import cached_ir

CONFIGS = [  # (model, precision, hint)
    ("resnet-50", "fp32", "latency"),
    ("resnet-50", "int8", "latency"),
    ("resnet-50", "fp32", "throughput"),
    ("resnet-50", "int8", "throughput"),
    ("mobilenet-v2", "fp32", "throughput"),
    ("bert-base-cased", "fp32", "latency"),
]
F32_CONFIGS = [("resnet-50", "fp32", "latency"), ("resnet-50", "fp32", "throughput")]
API = {"latency": "sync", "throughput": "async"}


def ensure_ir(settings: Settings, model: str, precision: str) -> Path:
    """Build the workload (child process) unless it is cached; return its IR."""
    if (hit := cached_ir(settings.models_dir, model, precision)) is None:
        subprocess.run([sys.executable, "-m", "assistant.tools.workloads", model, precision,
                        "--models-dir", str(settings.models_dir)], cwd=ROOT, check=True)
        hit = cached_ir(settings.models_dir, model, precision)
    assert hit is not None
    return hit


def via_tool(settings: Settings, model: str, precision: str, hint: str, seconds: int) -> dict[str, Any]:
    """One run through the run_benchmark tool (validation, lock, subprocess, parsing, history)."""
    started = time.perf_counter()
    result = run_benchmark({"model": model, "precision": precision, "hint": hint, "seconds": seconds},
                           ToolContext(settings=settings))
    return {"fps": result["throughput_fps"], "median_ms": result["latency_ms"]["median"],
            "wall_s": round(time.perf_counter() - started, 3)}


def direct(ir: Path, hint: str, seconds: int, workdir: Path, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """One plain benchmark_app run with the same flags as the tool."""
    report = Path(tempfile.mkdtemp(dir=workdir))
    command = [str(benchmark_app_path()), "-m", str(ir), "-d", "CPU", "-hint", hint, "-api", API[hint],
               "-t", str(seconds), "-report_type", "no_counters", "-json_stats",
               "-report_folder", str(report), *extra]
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - started
    results = json.loads((report / "benchmark_report.json").read_text())["execution_results"]
    return {"fps": float(results["throughput"]), "median_ms": float(results["latency (ms)"]),
            "wall_s": round(wall, 3), "command": command}


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians of throughput, median latency and wall time over repeats."""
    fps = [r["fps"] for r in runs]
    return {"fps": statistics.median(fps),
            "fps_spread": round((max(fps) - min(fps)) / statistics.median(fps), 3),
            "median_ms": statistics.median(r["median_ms"] for r in runs),
            "wall_s": round(statistics.median(r["wall_s"] for r in runs), 3),
            "runs": [{k: v for k, v in r.items() if k != "command"} for r in runs]}


def compare(settings: Settings, config: tuple[str, str, str], seconds: int, repeats: int,
            workdir: Path) -> dict[str, Any]:
    """Alternate tool and direct runs; return both summaries and their ratios."""
    model, precision, hint = config
    ir = ensure_ir(settings, model, precision)
    tool_runs, direct_runs = [], []
    for i in range(repeats):
        pair = [lambda: tool_runs.append(via_tool(settings, model, precision, hint, seconds)),
                lambda: direct_runs.append(direct(ir, hint, seconds, workdir))]
        for run in pair if i % 2 == 0 else reversed(pair):
            run()
    tool, plain = summarize(tool_runs), summarize(direct_runs)
    print(f"{model} {precision} {hint}: tool {tool['fps']:.1f} FPS / {tool['median_ms']:.2f} ms, "
          f"direct {plain['fps']:.1f} FPS / {plain['median_ms']:.2f} ms", flush=True)
    return {"model": model, "precision": precision, "hint": hint, "ir": str(ir), "tool": tool,
            "direct": plain, "direct_command": direct_runs[-1]["command"],
            "fps_ratio_tool_vs_direct": round(tool["fps"] / plain["fps"], 3),
            "latency_ratio_tool_vs_direct": round(tool["median_ms"] / plain["median_ms"], 3),
            "wall_overhead_s": round(tool["wall_s"] - plain["wall_s"], 3)}


def forced_f32(settings: Settings, config: tuple[str, str, str], seconds: int, repeats: int,
               workdir: Path) -> dict[str, Any]:
    """Direct runs with -infer_precision f32 (true FP32 execution on bf16-capable CPUs)."""
    model, precision, hint = config
    ir = ensure_ir(settings, model, precision)
    runs = [direct(ir, hint, seconds, workdir, ("-infer_precision", "f32")) for _ in range(repeats)]
    return {"model": model, "precision": precision, "hint": hint, "infer_precision": "f32", **summarize(runs)}


def int8_speedups(comparisons: list[dict[str, Any]], f32: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """resnet-50 INT8 vs FP32 (default bf16 execution and forced f32), from the tool's medians."""
    by_key = {(c["model"], c["precision"], c["hint"]): c["tool"] for c in comparisons}
    forced = {(c["model"], c["hint"]): c for c in f32}
    out = []
    for hint in ("latency", "throughput"):
        int8, fp32 = by_key.get(("resnet-50", "int8", hint)), by_key.get(("resnet-50", "fp32", hint))
        if not (int8 and fp32):
            continue
        row = {"model": "resnet-50", "hint": hint, "int8_fps": int8["fps"], "fp32_fps": fp32["fps"],
               "int8_median_ms": int8["median_ms"], "fp32_median_ms": fp32["median_ms"],
               "fps_speedup_vs_fp32_ir_default": round(int8["fps"] / fp32["fps"], 2)}
        if f := forced.get(("resnet-50", hint)):
            row.update(f32_forced_fps=f["fps"], f32_forced_median_ms=f["median_ms"],
                       fps_speedup_vs_forced_f32=round(int8["fps"] / f["fps"], 2))
        out.append(row)
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the comparison and write the JSON results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "tool_overhead.json")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tool-overhead-") as tmp:
        workdir = Path(tmp)
        # IRs come from (and are cached in) the project's models/; runs and history stay in tmp
        settings = Settings(cache_dir=workdir / "cache", history_db=workdir / "cache" / "history.sqlite")
        started, load_before = time.time(), os.getloadavg()
        comparisons = [compare(settings, c, args.seconds, args.repeats, workdir) for c in CONFIGS]
        f32 = [forced_f32(settings, c, args.seconds, args.repeats, workdir) for c in F32_CONFIGS]
    info = system_info()
    report = {
        "what": "run_benchmark tool vs direct benchmark_app, same IR and flags, alternating, medians",
        "seconds": args.seconds, "repeats": args.repeats, "total_s": round(time.time() - started, 1),
        "load_average_before_after": [load_before, os.getloadavg()],
        "machine": {"cpu": info["cpu"]["name"], "logical_cores": info["cpu"]["logical_cores"],
                    "isa": info["cpu"]["isa"], "openvino_version": info["openvino_version"]},
        "comparisons": comparisons, "forced_f32": f32, "int8_vs_fp32": int8_speedups(comparisons, f32),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

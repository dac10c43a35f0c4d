"""Every catalog workload that benchmark_app measures (vision and NLP), on this machine, through run_benchmark.

    python -m benchmarks.catalog_vision [--precisions fp32,int8] [--hints latency,throughput] [--seconds 10]
                                        [--only yolov8n,resnet-50] [--output FILE]

Each workload is built once from its architecture with random weights (cached in models/workloads/, as the
tool does; a build's time is reported when this run did it), then benchmark_app runs it the FAQ's way:
``-hint latency -api sync`` (median latency; FPS of one request) and ``-hint throughput -api async``
(FPS with the streams the hint picks). Runs go one at a time; the load average is recorded around each.
Writes benchmarks/results/catalog_vision-YYYYMMDD-HHMMSS.json and prints a markdown table. Also the
`vision` section of `python -m benchmarks`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS_DIR, machine_info

HINTS = ("latency", "throughput")
PRECISIONS = ("fp32", "int8")


def workloads() -> list[str]:
    """The catalog workloads benchmark_app measures: every buildable one."""
    from assistant.tools.workloads import BUILDABLE

    return list(BUILDABLE)


def run(seconds: int = 10, precisions: tuple[str, ...] = PRECISIONS, hints: tuple[str, ...] = HINTS,
        only: tuple[str, ...] = (), log=print, on_result=lambda section: None) -> dict[str, Any]:
    """Build (if needed) and benchmark each workload x precision x hint; one row per run.

    `on_result` gets the section so far after every run."""
    from assistant.config import Settings
    from assistant.tools.base import ToolContext
    from assistant.tools.benchmark import run_benchmark
    from assistant.tools.workloads import BUILDABLE, cached_ir

    names = [n for n in workloads() if not only or n in only]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-vision-") as tmp:
        # the real models dir (builds are reused and kept); history and reports in a scratch dir
        settings = Settings.from_env(os.environ).replace(
            cache_dir=Path(tmp) / "cache", history_db=Path(tmp) / "cache" / "history.sqlite",
            bench_max_seconds=max(seconds, 1), tool_timeout_s=3600)
        for name in names:
            for precision in precisions:
                built_here = cached_ir(settings.models_dir, name, precision) is None
                for hint in hints:
                    load = os.getloadavg()[0]
                    started = time.perf_counter()
                    row: dict[str, Any] = {"workload": name, "task": BUILDABLE[name].task, "input": BUILDABLE[name]
                                           .input_desc, "precision": precision, "hint": hint, "seconds": seconds,
                                           "load_before": round(load, 2)}
                    try:
                        result = run_benchmark({"model": name, "precision": precision, "hint": hint,
                                                "seconds": seconds}, ToolContext(settings=settings))
                    except Exception as exc:  # one failure does not end the section
                        row["error"] = f"{type(exc).__name__}: {exc}"
                        log(f"  {name} {precision} {hint}: failed: {exc}")
                        rows.append(row)
                        on_result({"seconds": seconds, "rows": rows})
                        continue
                    row.update({key: result.get(key) for key in (
                        "throughput_fps", "latency_ms", "iterations", "infer_requests", "inference_precision",
                        "compile_ms", "first_inference_ms", "measured_ms", "command", "ir_path", "note")})
                    row["precision"] = result["precision"]  # what was executed
                    row["wall_s"] = round(time.perf_counter() - started, 1)
                    if built_here:
                        meta = Path(result["ir_path"]).with_name("workload.json")
                        row["build_s"] = json.loads(meta.read_text()).get("build_seconds") if meta.is_file() \
                            else None
                        built_here = False
                    row["load_after"] = round(os.getloadavg()[0], 2)
                    rows.append(row)
                    on_result({"seconds": seconds, "rows": rows})
                    log(f"  {name} {precision} {hint}: {row['throughput_fps']} FPS, median "
                        f"{row['latency_ms']['median']} ms ({row['iterations']} iterations, load {row['load_before']})")
    return {"seconds": seconds, "precisions": list(precisions), "hints": list(hints), "rows": rows,
            "note": "random weights: timings only, not accuracy"}


def markdown_table(section: dict[str, Any]) -> str:
    """One line per workload and precision: throughput (throughput hint) and median latency (latency hint)."""
    cells: dict[tuple[str, str], dict[str, Any]] = {}
    for row in section.get("rows", []):
        cell = cells.setdefault((row["workload"], row["precision"]), {})
        if "error" in row:
            cell[row["hint"]] = "failed"
        elif row["hint"] == "throughput":
            cell["throughput"] = f"{row['throughput_fps']:g}"
        else:
            cell["latency"] = f"{row['latency_ms']['median']:g}"
            cell["sync_fps"] = f"{row['throughput_fps']:g}"
    lines = ["| workload | precision | throughput FPS (throughput hint) | median latency ms (latency hint) | "
             "FPS at latency hint |", "|---|---|---:|---:|---:|"]
    for (name, precision), cell in cells.items():
        lines.append(f"| {name} | {precision.upper()} | {cell.get('throughput', '')} | {cell.get('latency', '')} | "
                     f"{cell.get('sync_fps', '')} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.catalog_vision", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="benchmark_app -t for each run (default 10)")
    parser.add_argument("--precisions", default=",".join(PRECISIONS), help="comma list of fp32, fp16, int8")
    parser.add_argument("--hints", default=",".join(HINTS), help="comma list of latency, throughput")
    parser.add_argument("--only", default="", help="comma list of workloads (default: all)")
    parser.add_argument("--output", type=Path, default=None, help="JSON file (default: benchmarks/results/)")
    args = parser.parse_args(argv)

    def split(text: str) -> tuple[str, ...]:
        return tuple(s.strip() for s in text.split(",") if s.strip())

    result = {"created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "argv": sys.argv[1:], "machine": machine_info()}
    result["vision"] = run(args.seconds, split(args.precisions), split(args.hints), split(args.only),
                           log=lambda m: print(m, file=sys.stderr, flush=True))
    result["machine"]["load_avg_end"] = machine_info()["load_avg"]
    out = args.output or RESULTS_DIR / f"catalog_vision-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str))
    print(markdown_table(result["vision"]))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The catalog's diffusion pipelines measured on this machine (random weights, published architecture), or
their fit message.

Each run is its own `ovperf bench-diffusion` process (fit check, build on first use, Text2ImagePipeline
measurement at the pipeline's default size), one at a time; repeated `--repeats` times so medians can be
reported on a shared machine. The build is kept between repeats and deleted at the end unless --keep.
Results are written after each run to benchmarks/results/catalog_diffusion-<time>.json.

    python -m benchmarks.catalog_diffusion [--precision int8] [--steps 4] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT, machine_info

RESULTS = ROOT / "benchmarks" / "results"


def measure(name: str, *, precision: str, steps: int, iterations: int, models_dir: Path,
            timeout_s: int = 3600) -> dict[str, Any]:
    """One pipeline through the CLI: its result, or the fit/failure message and the exit code."""
    command = [sys.executable, "-m", "assistant.cli", "bench-diffusion", "--model", name, "--precision", precision,
               "--steps", str(steps), "--iterations", str(iterations), "--json"]
    env = {**os.environ, "OVPERF_MODELS_DIR": str(models_dir)}
    started = time.perf_counter()
    try:
        run = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return {"workload": name, "precision": precision, "error": f"stopped after {timeout_s} s"}
    seconds = round(time.perf_counter() - started, 1)
    if run.returncode == 0:
        result = json.loads(run.stdout.strip().splitlines()[-1])
        return {**result, "wall_s": seconds}
    message = " ".join(line.strip() for line in run.stderr.splitlines() if line.strip())
    return {"workload": name, "precision": precision, "exit_code": run.returncode,
            "error": message.removeprefix("error: ")[:700], "wall_s": seconds}


def summary(name: str, precision: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the successful runs (or the first failure)."""
    ok = [run for run in runs if "error" not in run]
    if not ok:
        return runs[0]

    def median(key: str) -> float:
        return round(statistics.median(run[key] for run in ok), 3)

    return {"workload": name, "precision": precision, "runs": len(ok), "steps": ok[0]["steps"],
            "size": f"{ok[0]['width']}x{ok[0]['height']}", "seconds_per_image": median("seconds_per_image"),
            "seconds_per_step": median("seconds_per_step"), "peak_rss_mb": median("peak_rss_mb"),
            "all_seconds_per_image": [run["seconds_per_image"] for run in ok],
            "all_seconds_per_step": [run["seconds_per_step"] for run in ok]}


def row(result: dict[str, Any]) -> str:
    """A markdown row: workload, precision, size and steps, s/image, s/step, peak memory GB (or the message)."""
    if "error" in result:
        return f"| {result['workload']} | {result['precision'].upper()} | {result['error']} | | | |"
    return (f"| {result['workload']} | {result['precision'].upper()} | {result['size']}, {result['steps']} steps | "
            f"{result['seconds_per_image']:.1f} | {result['seconds_per_step']:.2f} | "
            f"{result['peak_rss_mb'] / 1024:.1f} |")


def run(*, precision: str = "int8", steps: int = 4, repeats: int = 3, models_dir: Path = ROOT / "models",
        keep: bool = False, log=print, on_result=lambda report: None) -> dict[str, Any]:
    """Every catalog diffusion pipeline, `repeats` times each; the suite's `catalog_diffusion` section."""
    from assistant.tools.diffusion_workloads import DIFFUSION_WORKLOADS, diffusion_dir

    report: dict[str, Any] = {"precision": precision, "steps": steps, "repeats": repeats, "results": [],
                              "runs": {}}
    for name in DIFFUSION_WORKLOADS:
        runs = []
        for index in range(repeats):
            log(f"  {name} {precision} run {index + 1}/{repeats} ...")
            runs.append(measure(name, precision=precision, steps=steps, iterations=1, models_dir=models_dir))
            report["runs"][name] = runs
            on_result(report)
            if "error" in runs[-1]:  # a fit message does not change with repeating
                break
        report["results"].append(summary(name, precision, runs))
        log("  " + row(report["results"][-1]))
        if not keep:
            shutil.rmtree(diffusion_dir(models_dir, name, precision), ignore_errors=True)
    return report


def main(argv: list[str] | None = None) -> int:
    """Measure the catalog diffusion pipelines and write the JSON; print a markdown table."""
    from assistant.tools.diffusion_workloads import DIFFUSION_PRECISIONS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precision", choices=DIFFUSION_PRECISIONS, default="int8")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models-dir", type=Path, default=ROOT / "models")
    parser.add_argument("--keep", action="store_true", help="keep the builds instead of deleting them")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    out = args.output or RESULTS / f"catalog_diffusion-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    header = {"created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": machine_info(),
              "settings": {k: str(v) for k, v in vars(args).items()}}

    def write(report: dict[str, Any]) -> None:
        out.write_text(json.dumps({**header, **report}, indent=2, default=str))

    report = run(precision=args.precision, steps=args.steps, repeats=args.repeats, models_dir=args.models_dir,
                 keep=args.keep, log=lambda message: print(message, flush=True), on_result=write)
    write(report)
    print("| workload | precision | size, steps | s / image | s / step | peak memory GB |")
    print("|---|---|---|---|---|---|")
    for result in report["results"]:
        print(row(result))
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Every catalog LLM measured on this machine (random weights, published architecture), or its fit message.

Each LLM runs in its own `ovperf bench-llm` process (fit check, build on first use, llm_bench-style
measurement), one at a time, so no two multi-GB models are in memory together; its build is deleted after
the run unless --keep. Results are written after each LLM to benchmarks/results/catalog_llm-<time>.json.

    python -m benchmarks.catalog_llm [--precision int4] [--prompt-tokens 128] [--max-new-tokens 16]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT, machine_info

RESULTS = ROOT / "benchmarks" / "results"


def measure(name: str, *, precision: str, prompt_tokens: int, max_new_tokens: int, iterations: int,
            models_dir: Path, keep: bool, timeout_s: int = 3600) -> dict[str, Any]:
    """One catalog LLM through the CLI: its result, or the fit/failure message and exit code."""
    from assistant.tools.llm_workloads import llm_workload_dir

    command = [sys.executable, "-m", "assistant.cli", "bench-llm", "--model", name, "--precision", precision,
               "--prompt-tokens", str(prompt_tokens), "--max-new-tokens", str(max_new_tokens),
               "--iterations", str(iterations), "--json"]
    env = {**os.environ, "OVPERF_MODELS_DIR": str(models_dir)}
    started = time.perf_counter()
    try:
        run = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return {"workload": name, "precision": precision, "error": f"stopped after {timeout_s} s"}
    finally:
        if not keep:
            shutil.rmtree(llm_workload_dir(models_dir, name, precision), ignore_errors=True)
    seconds = round(time.perf_counter() - started, 1)
    if run.returncode == 0:
        result = json.loads(run.stdout.strip().splitlines()[-1])
        result.pop("per_iteration", None)
        return {**result, "wall_s": seconds}
    message = " ".join(line.strip() for line in run.stderr.splitlines() if line.strip())
    return {"workload": name, "precision": precision, "exit_code": run.returncode,
            "error": message.removeprefix("error: ")[:600], "wall_s": seconds}


def row(result: dict[str, Any]) -> str:
    """A markdown table row: workload, precision, first/second token ms, tokens/s, peak memory GB."""
    if "error" in result:
        return f"| {result['workload']} | {result['precision'].upper()} | {result['error']} | | | |"
    return (f"| {result['workload']} | {result['precision'].upper()} | {result['first_token_ms']:.0f} | "
            f"{result['second_token_ms']:.0f} | {result['tokens_per_s']:.2f} | {result['peak_rss_mb'] / 1024:.1f} |")


def section(*, quick: bool = False, log=print, on_result=lambda section: None) -> dict[str, Any]:
    """The suite's `catalog_llm` section: every catalog LLM in INT4 (quick: the smallest only), builds deleted."""
    from assistant.tools.llm_workloads import LLM_WORKLOADS, architecture

    names = sorted(LLM_WORKLOADS, key=lambda n: architecture(n).weight_bytes("int4"))[:1 if quick else None]
    results: list[dict[str, Any]] = []
    report = {"prompt_tokens": 128, "max_new_tokens": 16, "iterations": 1, "results": results}
    for name in names:
        log(f"  {name} int4 ...")
        results.append(measure(name, precision="int4", prompt_tokens=128, max_new_tokens=16, iterations=1,
                               models_dir=ROOT / "models", keep=False))
        log("  " + row(results[-1]))
        on_result(report)
    return report


def main(argv: list[str] | None = None) -> int:
    """Measure the catalog LLMs (all, or --only NAME,...) and write the JSON; print a markdown table."""
    from assistant.tools.llm_workloads import LLM_PRECISIONS, LLM_WORKLOADS, architecture

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precision", choices=LLM_PRECISIONS, default="int4")
    parser.add_argument("--prompt-tokens", type=int, default=128)
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--iterations", type=int, default=1)
    parser.add_argument("--only", default="", help="comma list of catalog LLM names (default: all)")
    parser.add_argument("--models-dir", type=Path, default=ROOT / "models",
                        help="where builds go (default: the project's models folder)")
    parser.add_argument("--keep", action="store_true", help="keep each build instead of deleting it")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(LLM_WORKLOADS)
    unknown = [n for n in names if n not in LLM_WORKLOADS]
    if unknown:
        parser.error(f"not catalog LLMs: {', '.join(unknown)}; choose from {', '.join(LLM_WORKLOADS)}")
    names.sort(key=lambda n: architecture(n).weight_bytes(args.precision))  # small first
    out = args.output or RESULTS / f"catalog_llm-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": machine_info(),
                              "settings": {k: str(v) for k, v in vars(args).items()}, "results": []}
    for name in names:
        print(f"{name} {args.precision} ...", flush=True)
        result = measure(name, precision=args.precision, prompt_tokens=args.prompt_tokens,
                         max_new_tokens=args.max_new_tokens, iterations=args.iterations,
                         models_dir=args.models_dir, keep=args.keep)
        report["results"].append(result)
        out.write_text(json.dumps(report, indent=2, default=str))
        print(row(result), flush=True)
    print("| workload | precision | first token ms | second token ms | tokens/s | peak memory GB |")
    print("|---|---|---|---|---|---|")
    for result in report["results"]:
        print(row(result))
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

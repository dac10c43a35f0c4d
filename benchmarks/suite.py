"""The benchmark suite: `python -m benchmarks [--only ...] [--repeats N] [--quick]`.

Runs, in one process (LLM backends and cold starts in child processes), the measurements described in
benchmarks/README.md, writes benchmarks/results/suite-<time>.json and prints a table with the targets.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from benchmarks import catalog_diffusion, catalog_llm, catalog_vision, llm_compare, sections, workload_table
from benchmarks.common import RESULTS_DIR, machine_info

SECTIONS = ("llm", "embedding", "retrieval", "answer", "cold", "tool", "vision", "catalog_llm",
            "catalog_diffusion")

TARGETS = {  # description of each target
    "llm_vs_llamacpp": "openvino (assistant config) TPOT <= 0.9x llama.cpp",
    "llm_plain_vs_llamacpp": "openvino plain decoding TPOT <= 0.9x llama.cpp",
    "llm_vs_torch": "PyTorch eager TPOT / openvino plain TPOT >= 3",
    "embedding": "OpenVINO embedding <= 0.5x torch",
    "retrieval": "retrieval p50 <= 5 ms",
    "answer_total": "warm answer p50 <= 1000 ms",
    "answer_first": "warm first token p50 <= 150 ms",
    "cold_cached": "cold start with caches <= 10 s",
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help=f"comma list of sections: {', '.join(SECTIONS)} (default: all)")
    parser.add_argument("--skip", default="", help="comma list of sections to leave out")
    parser.add_argument("--repeats", type=int, default=None,
                        help="repetitions: LLM rounds, answer passes, cached cold starts, tool pairs "
                             "(default 5, or 3 with --quick); single-call timings scale with it")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, short tool runs (~3 min)")
    parser.add_argument("--output", type=Path, default=None, help="JSON file (default: benchmarks/results/)")
    llm_compare.add_arguments(parser)
    args = parser.parse_args(argv)
    args.only = [s.strip() for s in args.only.split(",") if s.strip()]
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    unknown = (set(args.only) | skip) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s): {', '.join(sorted(unknown))}; choose from {', '.join(SECTIONS)}")
    args.only = [s for s in SECTIONS if s in args.only and s not in skip]
    args.repeats_given = args.repeats is not None
    args.repeats = args.repeats or (3 if args.quick else 5)
    args.variants = llm_compare.parse_variants(args.variant_specs)
    return args


def run(args: argparse.Namespace, write=lambda results: None) -> dict[str, Any]:
    """Every section of args.only in order; `write(results)` is called after each section and with the
    partial results of the long catalog sections, so a stopped run leaves what it measured."""
    from rich.console import Console

    console = Console(stderr=True)

    def log(message: str) -> None:
        console.print(message, highlight=False)

    quick, n = args.quick, args.repeats
    results: dict[str, Any] = {"created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "argv": sys.argv[1:],
                               "quick": quick, "repeats": n, "machine": machine_info(), "sections": {}}
    # diffusion images take minutes each: 3 runs (1 quick) unless --repeats is given
    diffusion_repeats = n if args.repeats_given else (1 if quick else 3)

    def partial(name: str):
        def update(section: dict[str, Any]) -> None:
            results["sections"][name] = {**section, "partial": True}
            write(results)
        return update

    plan = {
        "llm": lambda: llm_compare.run(args, log=log),
        "embedding": lambda: sections.embedding(runs=20 * n, builds=max(2, n // 2 + 1), log=log),
        "retrieval": lambda: sections.retrieval(rounds=n, log=log),
        "answer": lambda: sections.answers(passes=1 if quick else 2, log=log),
        "cold": lambda: sections.cold_start(cached_runs=2 if quick else 3, log=log),
        "tool": lambda: sections.tool_overhead(seconds=2 if quick else 5, repeats=1 if quick else 2, log=log),
        "catalog_llm": lambda: catalog_llm.section(quick=quick, log=log, on_result=partial("catalog_llm")),
        "catalog_diffusion": lambda: catalog_diffusion.run(steps=2 if quick else 4, repeats=diffusion_repeats,
                                                           log=log, on_result=partial("catalog_diffusion")),
        "vision": lambda: catalog_vision.run(seconds=3 if quick else 10,
                                             hints=("latency",) if quick else catalog_vision.HINTS, log=log,
                                             on_result=partial("vision")),
    }
    for name in args.only:
        log(f"[bold]{name}[/]")
        start = time.perf_counter()
        try:
            results["sections"][name] = plan[name]()
        except Exception as exc:
            results["sections"][name] = {"error": f"{type(exc).__name__}: {exc}",
                                         "traceback": traceback.format_exc()[-3000:]}
            log(f"  [red]{name} failed:[/] {exc}")
        results["sections"][name]["section_s"] = round(time.perf_counter() - start, 1)
        results["machine"]["load_avg_end"] = machine_info()["load_avg"]
        write(results)
    results["machine"]["load_avg_end"] = machine_info()["load_avg"]
    results["targets"] = check_targets(results["sections"])
    return results


def _get(data: dict[str, Any], *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def check_targets(s: dict[str, Any]) -> dict[str, Any]:
    """Each target: the measured value, the limit, and whether it is met (None if not measured)."""
    out: dict[str, Any] = {}

    def add(key: str, value: float | None, limit: float, higher_is_better: bool = False) -> None:
        ok = None if value is None else (value >= limit if higher_is_better else value <= limit)
        out[key] = {"target": TARGETS[key], "value": value, "limit": limit, "met": ok}

    ratios = _get(s, "llm", "ratios") or {}
    add("llm_vs_llamacpp", ratios.get("openvino_tpot_vs_llamacpp"), 0.9)
    add("llm_plain_vs_llamacpp", ratios.get("openvino-plain_tpot_vs_llamacpp"), 0.9)
    torch_ratio = ratios.get("openvino-plain_tpot_vs_torch") or ratios.get("openvino_tpot_vs_torch")
    add("llm_vs_torch", round(1 / torch_ratio, 2) if torch_ratio else None, 3.0, higher_is_better=True)
    add("embedding", _get(s, "embedding", "ratio_openvino_vs_torch"), 0.5)
    add("retrieval", _get(s, "retrieval", "new_query_ms", "median"), 5.0)
    add("answer_total", _get(s, "answer", "all_first_pass", "total_ms", "median"), 1000.0)
    add("answer_first", _get(s, "answer", "all_first_pass", "first_token_ms", "median"), 150.0)
    add("cold_cached", _get(s, "cold", "cached_run_s", "median"), 10.0)
    return out


def table(results: dict[str, Any]) -> None:
    """Print the results (stdout) as rich tables."""
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 150)
    s = results["sections"]
    t = Table(title="OpenVINO Performance Assistant: benchmark suite (medians of repeated runs)")
    t.add_column("section")
    t.add_column("measurement")
    t.add_column("unit")
    for column in ("n", "median", "p10", "p90", "p95", "p99"):
        t.add_column(column, justify="right")

    def fmt(value: Any) -> str:
        if value is None:
            return ""
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"

    def row(section: str, name: str, stats: dict[str, Any] | None, unit: str, tails: bool = False) -> None:
        if not stats or not stats.get("n"):
            return
        t.add_row(section, name, unit, str(stats["n"]), fmt(stats["median"]), fmt(stats["p10"]), fmt(stats["p90"]),
                  fmt(stats["p95"]) if tails else "", fmt(stats["p99"]) if tails else "")

    def single(section: str, name: str, value: Any, unit: str) -> None:
        t.add_row(section, name, unit, "", value if isinstance(value, str) else fmt(value), "", "", "", "")

    llm = s.get("llm") or {}
    for label, entry in (llm.get("backends") or {}).items():
        if "tpot_ms" not in entry:
            single("llm", f"{label}: failed", (entry.get("error") or "no runs")[-70:], "")
            continue
        row("llm", f"{label}: time to first token", entry.get("ttft_ms"), "ms")
        row("llm", f"{label}: time per output token", entry.get("tpot_ms"), "ms")
        row("llm", f"{label}: tokens/s (first token included)", entry.get("tokens_per_s"), "tok/s")
        if entry.get("peak_rss_mb"):
            single("llm", f"{label}: peak RSS (process)", entry["peak_rss_mb"], "MB")
    for label, why in (llm.get("skipped") or {}).items():
        single("llm", f"{label}: skipped", why, "")
    paired = llm.get("paired_ratios") or {}
    for key, value in (llm.get("ratios") or {}).items():
        extra = f" (paired per round: {paired[key]['median']:.3f})" if key in paired else ""
        single("llm", key.replace("_", " ") + extra, f"{value:.3f}", "ratio")
    emb = s.get("embedding") or {}
    row("embedding", "embed 1 query, OpenVINO", emb.get("openvino_ms"), "ms")
    row("embedding", "embed 1 query, torch", emb.get("torch_ms"), "ms")
    if emb.get("ratio_openvino_vs_torch"):
        single("embedding", "OpenVINO / torch", f"{emb['ratio_openvino_vs_torch']:.3f}", "ratio")
    row("embedding", f"index build ({_get(emb, 'index', 'chunks')} chunks)", _get(emb, "index", "build_s"), "s")
    ret = s.get("retrieval") or {}
    row("retrieval", "search k=3, new query", ret.get("new_query_ms"), "ms", tails=True)
    row("retrieval", "search k=3, repeated query (cached vector)", ret.get("repeated_query_ms"), "ms", tails=True)
    ans = s.get("answer") or {}
    for key, label in (("all_first_pass", "all dev questions"), ("llm_answers_first_pass", "FAQ answers (LLM)")):
        row("answer", f"{label}: first token", _get(ans, key, "first_token_ms"), "ms", tails=True)
        row("answer", f"{label}: total", _get(ans, key, "total_ms"), "ms", tails=True)
    if _get(ans, "all_first_pass", "facts_ok"):
        single("answer", "facts found (all dev questions)", ans["all_first_pass"]["facts_ok"], "")
    cold = s.get("cold") or {}
    row("cold start", "ovperf ask --json, empty cache dir", cold.get("first_run_s"), "s")
    row("cold start", "ovperf ask --json, cached", cold.get("cached_run_s"), "s")
    tool = s.get("tool") or {}
    if "tool" in tool:
        single("tool", "run_benchmark resnet-50 fp32 latency: median latency", tool["tool"]["median_ms"], "ms")
        single("tool", "direct benchmark_app, same IR and flags", tool["direct"]["median_ms"], "ms")
        single("tool", "tool / direct: FPS", f"{tool['fps_ratio_tool_vs_direct']:.3f}", "ratio")
        single("tool", "tool / direct: median latency", f"{tool['latency_ratio_tool_vs_direct']:.3f}", "ratio")
        single("tool", "tool wall-time overhead", tool["wall_overhead_s"], "s")
    for row in (s.get("vision") or {}).get("rows", []):
        label = f"{row['workload']} {row['precision']} {row['hint']}"
        if "error" in row:
            single("vision", f"{label}: failed", row["error"][-70:], "")
            continue
        single("vision", f"{label}: throughput", row["throughput_fps"], "FPS")
        single("vision", f"{label}: median latency", row["latency_ms"]["median"], "ms")
    console.print(t)
    errors = {name: sec["error"] for name, sec in s.items() if isinstance(sec, dict) and "error" in sec}
    for name, error in errors.items():
        console.print(f"[red]{name}: {error}[/]")

    tt = Table(title="Targets")
    for column in ("target", "measured", "met"):
        tt.add_column(column)
    for item in results["targets"].values():
        met = {True: "[green]yes[/]", False: "[red]no[/]", None: "[dim]not measured[/]"}[item["met"]]
        tt.add_row(item["target"], "" if item["value"] is None else f"{item['value']:g}", met)
    console.print(tt)
    m = results["machine"]
    console.print(f"{m['cpu']}, {m['logical_cores']} cores, ISA {' '.join(m['isa'])}, load "
                  f"{m['load_avg']} → {m.get('load_avg_end')}; openvino {m['versions']['openvino']}, "
                  f"llama-cpp-python {m['versions']['llama-cpp-python']}, torch {m['versions']['torch']}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = args.output or RESULTS_DIR / f"suite-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)

    def write(results: dict[str, Any]) -> None:
        out.write_text(json.dumps(results, indent=2, default=str))

    results = run(args, write=write)
    write(results)
    table(results)
    print(f"wrote {out}")
    if workload_table.has_catalog_sections(results):  # the README's workload tables of this run
        markdown = out.with_suffix(".md")
        markdown.write_text(workload_table.render(results, source=str(out)))
        print(f"wrote {markdown}")
    return 0

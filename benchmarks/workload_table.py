"""The catalog-workload tables of the README, rendered from one suite result file.

    python -m benchmarks.workload_table benchmarks/results/suite-YYYYMMDD-HHMMSS.json [--output FILE]

Reads the `vision`, `catalog_llm` and `catalog_diffusion` sections of a `python -m benchmarks` JSON and
prints markdown: a line on the run and the machine (with its load average), then one table per kind of
workload: LLMs (first and second token, tokens/s, peak memory), benchmark_app networks (per precision:
throughput FPS at the throughput hint, median latency and FPS at the latency hint) and diffusion pipelines
(seconds per image and per denoising step, peak memory). Every catalog workload gets a row: a workload that
does not fit this machine shows its fit message, a failed run its error, one the run did not reach says so.
The suite writes the same markdown next to its JSON (`suite-....md`).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

NOT_MEASURED = "not measured in this run"
FIT_EXIT_CODE = 3  # WorkloadTooLarge's exit code in the CLI


def sig(value: float | None, digits: int = 3) -> str:
    """A figure with at most `digits` significant digits, never in exponent form (4.38, 52.5, 6754, 0.0209);
    no trailing zeros, so a value the tool rounded (0.03 FPS) does not look more precise than it is."""
    if value is None:
        return ""
    if value == 0:
        return "0"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    text = f"{value:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if decimals else text


def _cell_text(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def message(result: dict[str, Any]) -> str:
    """The table text of a run without figures: its fit message, or why it failed."""
    error = str(result.get("error", ""))
    is_fit = result.get("exit_code") == FIT_EXIT_CODE or error.startswith("WorkloadTooLarge")
    error = error.removeprefix("WorkloadTooLarge: ")
    if is_fit:  # the message, without the estimate's details that follow it
        return "fit message: " + _cell_text(error.split(" Estimate:")[0])
    return "failed: " + _cell_text(error)[:200]


def _rows_by_name(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {item["workload"]: item for item in items if "workload" in item}


def _section_note(name: str, section: dict[str, Any] | None) -> str | None:
    """A sentence when the section failed, was stopped or is missing from the file."""
    if section is None:
        return f"The `{name}` section has no results in this file (not asked for, or the run stopped before it)."
    if "error" in section:
        return f"The `{name}` section failed: {_cell_text(section['error'])[:300]}"
    if section.get("partial"):
        return f"The `{name}` section was stopped before its end; rows it did not reach say so."
    return None


def llm_table(section: dict[str, Any] | None, names: list[str]) -> list[str]:
    """One row per catalog LLM: first and second token ms, tokens/s, peak memory GB (or the message)."""
    results = _rows_by_name((section or {}).get("results", []))
    lines = ["| workload | precision | first token ms | second token ms | tokens/s | peak memory GB |",
             "|---|---|---:|---:|---:|---:|"]
    ordered = [n for n in results] + [n for n in names if n not in results]  # the run's order: small first
    for name in ordered:
        result = results.get(name)
        if result is None:
            lines.append(f"| {name} | | {NOT_MEASURED} | | | |")
        elif "error" in result:
            lines.append(f"| {name} | {result.get('precision', '').upper()} | {message(result)} | | | |")
        else:
            lines.append(f"| {name} | {result['precision'].upper()} | {result['first_token_ms']:.0f} | "
                         f"{result['second_token_ms']:.0f} | {result['tokens_per_s']:.2f} | "
                         f"{result['peak_rss_mb'] / 1024:.1f} |")
    return lines


def vision_table(section: dict[str, Any] | None, names: list[str]) -> list[str]:
    """One row per network and precision: throughput-hint FPS, latency-hint median latency and FPS."""
    section = section or {}
    precisions = section.get("precisions") or ["fp32", "int8"]
    hints = section.get("hints") or ["latency", "throughput"]
    cells: dict[tuple[str, str], dict[str, str]] = {}
    for row in section.get("rows", []):
        cell = cells.setdefault((row["workload"], str(row["precision"]).lower()), {})
        if "error" in row:
            cell[row["hint"]] = message(row)  # in the column of that hint
        elif row["hint"] == "throughput":
            cell["throughput"] = sig(row["throughput_fps"])
        else:
            cell["latency"] = sig(row["latency_ms"]["median"])
            cell["sync_fps"] = sig(row["throughput_fps"])
    lines = ["| workload | precision | throughput FPS (throughput hint) | median latency ms (latency hint) | "
             "FPS (latency hint) |", "|---|---|---:|---:|---:|"]
    ordered = list(dict.fromkeys([name for name, _ in cells] + names))
    for name in ordered:
        for precision in precisions:
            cell = cells.get((name, precision))
            if cell is None:
                lines.append(f"| {name} | {precision.upper()} | {NOT_MEASURED} | | |")
                continue
            throughput = cell.get("throughput", NOT_MEASURED if "throughput" in hints else "")
            latency = cell.get("latency", NOT_MEASURED if "latency" in hints else "")
            lines.append(f"| {name} | {precision.upper()} | {throughput} | {latency} | {cell.get('sync_fps', '')} |")
    return lines


def _spread(median: float, values: list[float] | None, fmt: str) -> str:
    text = format(median, fmt)
    if values and len(values) > 1:
        text += f" ({format(min(values), fmt)}–{format(max(values), fmt)})"
    return text


def diffusion_table(section: dict[str, Any] | None, names: list[str]) -> list[str]:
    """One row per pipeline: size and steps, s/image, s/denoising step (median, min–max), peak memory GB."""
    results = _rows_by_name((section or {}).get("results", []))
    lines = ["| workload | precision | size, steps | s / image | s / denoising step | peak memory GB | runs |",
             "|---|---|---|---:|---:|---:|---:|"]
    for name in list(dict.fromkeys([*results, *names])):
        result = results.get(name)
        if result is None:
            lines.append(f"| {name} | | {NOT_MEASURED} | | | | |")
        elif "error" in result:
            lines.append(f"| {name} | {result.get('precision', '').upper()} | {message(result)} | | | | |")
        else:
            lines.append(f"| {name} | {result['precision'].upper()} | {result['size']}, {result['steps']} steps | "
                         f"{_spread(result['seconds_per_image'], result.get('all_seconds_per_image'), '.1f')} | "
                         f"{_spread(result['seconds_per_step'], result.get('all_seconds_per_step'), '.2f')} | "
                         f"{result['peak_rss_mb'] / 1024:.1f} | {result['runs']} |")
    return lines


def machine_line(results: dict[str, Any], source: str | None = None) -> str:
    """Which run, on what, under which load."""
    m = results.get("machine", {})
    versions = m.get("versions", {})
    argv = " ".join(results.get("argv") or [])
    when = str(results.get("created", ""))[:10]
    loads = [row[key] for row in (results.get("sections", {}).get("vision") or {}).get("rows", [])
             for key in ("load_before", "load_after") if isinstance(row.get(key), int | float)]
    start, end = (m.get("load_avg") or [None])[0], (m.get("load_avg_end") or [None])[0]
    load = f"load average (1 min) {start} at the start" + (f", {end} at the end" if end is not None else "")
    if loads:
        load += f", {min(loads)}–{max(loads)} around the benchmark_app runs"
    isa = " ".join(m.get("isa", [])) or "unknown"
    file_part = f" (`{Path(source).name}`)" if source else ""
    return (f"From one `python -m benchmarks {argv}` run on {when}{file_part}: {m.get('cpu', '?')}, "
            f"{m.get('logical_cores', '?')} logical cores, {m.get('memory_gb', '?')} GB, ISA {isa}; "
            f"openvino {versions.get('openvino')}, openvino-genai {versions.get('openvino-genai')}; {load}.")


def catalog_names() -> tuple[list[str], list[str], list[str]]:
    """The catalog's LLMs, benchmark_app networks and diffusion pipelines (what must have a row)."""
    from assistant.tools.diffusion_workloads import DIFFUSION_WORKLOADS
    from assistant.tools.llm_workloads import LLM_WORKLOADS
    from assistant.tools.workloads import BUILDABLE

    return list(LLM_WORKLOADS), list(BUILDABLE), list(DIFFUSION_WORKLOADS)


def render(results: dict[str, Any], source: str | None = None,
           names: tuple[list[str], list[str], list[str]] | None = None) -> str:
    """The markdown of the three tables (with the run's line and any section notes)."""
    llms, networks, pipelines = names or catalog_names()
    sections = results.get("sections", {})
    llm = sections.get("catalog_llm")
    parts = [machine_line(results, source), ""]
    settings = (f"{llm.get('prompt_tokens')} prompt tokens, {llm.get('max_new_tokens')} new tokens, "
                f"{llm.get('iterations')} measured run after 1 warm-up") if llm and "error" not in llm else ""
    parts += [f"LLMs (`ovperf bench-llm`{', ' + settings if settings else ''}):", ""]
    parts += llm_table(llm, llms)
    vision = sections.get("vision")
    seconds = (vision or {}).get("seconds")
    parts += ["", "benchmark_app networks (`run_benchmark`: `-hint latency -api sync` and `-hint throughput "
              f"-api async`{f', {seconds} s each' if seconds else ''}):", ""]
    parts += vision_table(vision, networks)
    diffusion = sections.get("catalog_diffusion")
    parts += ["", "Diffusion pipelines (`ovperf bench-diffusion`; median of the runs, min–max in brackets):", ""]
    parts += diffusion_table(diffusion, pipelines)
    notes = [note for name, section in (("catalog_llm", llm), ("vision", vision), ("catalog_diffusion", diffusion))
             if (note := _section_note(name, section))]
    if notes:
        parts += ["", *notes]
    return "\n".join(parts) + "\n"


def has_catalog_sections(results: dict[str, Any]) -> bool:
    return any(name in results.get("sections", {}) for name in ("vision", "catalog_llm", "catalog_diffusion"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.workload_table", description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="a suite JSON (benchmarks/results/suite-*.json)")
    parser.add_argument("--output", type=Path, default=None, help="write the markdown here instead of stdout")
    args = parser.parse_args(argv)
    text = render(json.loads(args.results.read_text()), source=str(args.results))
    if args.output:
        args.output.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

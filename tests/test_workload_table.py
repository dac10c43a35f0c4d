"""The README's catalog-workload tables rendered from one suite result file (hand-made results, no runs)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from benchmarks import catalog_diffusion, catalog_llm, catalog_vision, suite, workload_table

LLMS = ["DeepSeek-R1-Distill-Qwen-1.5B", "Gemma-2-9B", "Llama-3-8b"]
NETWORKS = ["resnet-50", "mask_rcnn_resnet50_atrous_coco", "yolov8n"]
PIPELINES = ["Stable-Diffusion-V1-5", "FLUX.1-schnell"]
NAMES = (LLMS, NETWORKS, PIPELINES)


def vision_row(workload: str, precision: str, hint: str, fps: float, median_ms: float, load: float) -> dict[str, Any]:
    return {"workload": workload, "precision": precision, "hint": hint, "throughput_fps": fps,
            "latency_ms": {"median": median_ms, "avg": median_ms}, "load_before": load, "load_after": load + 0.5}


RESULTS: dict[str, Any] = {
    "created": "2026-12-03T17:16:07+0000",
    "argv": ["--only", "vision,catalog_llm,catalog_diffusion", "--repeats", "1"],
    "machine": {"cpu": "AMD EPYC", "logical_cores": 2, "memory_gb": 23.5, "isa": ["avx2", "avx512f"],
                "load_avg": [0.16, 0.5, 0.7], "load_avg_end": [3.42, 3.0, 2.9],
                "versions": {"openvino": "2026.4.1", "openvino-genai": "2026.4.1.0"}},
    "sections": {
        "catalog_llm": {"prompt_tokens": 128, "max_new_tokens": 16, "iterations": 1, "results": [
            {"workload": "DeepSeek-R1-Distill-Qwen-1.5B", "precision": "int4", "first_token_ms": 3235.4,
             "second_token_ms": 101.6, "tokens_per_s": 9.7834, "peak_rss_mb": 2457.6},
            {"workload": "Gemma-2-9B", "precision": "int4", "exit_code": 3,
             "error": "Gemma-2-9B in INT4 needs about 33.0 GB of memory, this machine has 21.0 GB available "
                      "Estimate: 5.9 GB of INT4 weights (9.24B parameters); build peak 4x the weights"},
        ]},
        "vision": {"seconds": 10, "precisions": ["fp32", "int8"], "hints": ["latency", "throughput"], "rows": [
            vision_row("resnet-50", "fp32", "latency", 18.83, 52.45, 0.16),
            vision_row("resnet-50", "fp32", "throughput", 104.3, 98.65, 0.6),
            vision_row("resnet-50", "int8", "latency", 35.71, 27.25, 0.82),
            {"workload": "resnet-50", "precision": "int8", "hint": "throughput", "load_before": 1.0,
             "error": "ToolExecutionError: benchmark_app exited with 1 | see the log"},
            vision_row("mask_rcnn_resnet50_atrous_coco", "fp32", "latency", 0.0209, 47796.2, 2.4),
            vision_row("mask_rcnn_resnet50_atrous_coco", "fp32", "throughput", 0.0215, 93000.0, 2.5),
            vision_row("mask_rcnn_resnet50_atrous_coco", "int8", "latency", 0.09, 10832.0, 2.6),
            vision_row("mask_rcnn_resnet50_atrous_coco", "int8", "throughput", 0.0931, 21000.0, 2.7),
        ]},
        "catalog_diffusion": {"precision": "int8", "steps": 4, "repeats": 3, "results": [
            {"workload": "Stable-Diffusion-V1-5", "precision": "int8", "runs": 3, "steps": 4, "size": "512x512",
             "seconds_per_image": 224.1, "seconds_per_step": 31.7, "peak_rss_mb": 7577.6,
             "all_seconds_per_image": [187.04, 224.1, 335.2], "all_seconds_per_step": [25.5, 31.7, 48.7]},
            {"workload": "FLUX.1-schnell", "precision": "int8", "exit_code": 3,
             "error": "FLUX.1-schnell in INT8 needs about 49.0 GB of memory, this machine has 21.0 GB available "
                      "Estimate: 11.9B transformer + 4.76B T5-XXL encoder. Close other programs, or pick a smaller"},
        ]},
    },
}


def table_rows(markdown: str, header_start: str) -> dict[tuple[str, ...], list[str]]:
    """The rows of the table whose header starts with `header_start`, keyed by workload (and precision)."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header_start))
    rows: dict[tuple[str, ...], list[str]] = {}
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]]  # an escaped \| stays
        rows[(cells[0], cells[1]) if header_start.startswith("| workload | precision | throughput") else
             (cells[0],)] = cells
    return rows


@pytest.fixture(scope="module")
def markdown() -> str:
    return workload_table.render(RESULTS, source="benchmarks/results/suite-20261203-171607.json", names=NAMES)


def test_every_catalog_workload_has_a_row(markdown: str) -> None:
    llm = table_rows(markdown, "| workload | precision | first token")
    vision = table_rows(markdown, "| workload | precision | throughput")
    diffusion = table_rows(markdown, "| workload | precision | size, steps")
    assert set(llm) == {(name,) for name in LLMS}
    assert set(vision) == {(name, p) for name in NETWORKS for p in ("FP32", "INT8")}
    assert set(diffusion) == {(name,) for name in PIPELINES}
    assert llm[("Llama-3-8b",)][2] == "not measured in this run"  # the run did not reach it
    assert vision[("yolov8n", "INT8")][2] == "not measured in this run"
    # the measured rows come first, in the run's order
    assert list(llm)[:2] == [("DeepSeek-R1-Distill-Qwen-1.5B",), ("Gemma-2-9B",)]


def test_figures_are_formatted(markdown: str) -> None:
    llm = table_rows(markdown, "| workload | precision | first token")
    assert llm[("DeepSeek-R1-Distill-Qwen-1.5B",)] == ["DeepSeek-R1-Distill-Qwen-1.5B", "INT4", "3235", "102", "9.78",
                                                       "2.4"]
    vision = table_rows(markdown, "| workload | precision | throughput")
    assert vision[("resnet-50", "FP32")][2:] == ["104", "52.5", "18.8"]  # throughput hint FPS, latency hint
    assert vision[("mask_rcnn_resnet50_atrous_coco", "FP32")][2:] == ["0.0215", "47796", "0.0209"]
    # no digits the tool did not give (0.09, not 0.0900)
    assert vision[("mask_rcnn_resnet50_atrous_coco", "INT8")][2:] == ["0.0931", "10832", "0.09"]
    diffusion = table_rows(markdown, "| workload | precision | size, steps")
    assert diffusion[("Stable-Diffusion-V1-5",)][1:] == ["INT8", "512x512, 4 steps", "224.1 (187.0–335.2)",
                                                          "31.70 (25.50–48.70)", "7.4", "3"]


def test_fit_messages_and_failures_replace_the_figures(markdown: str) -> None:
    llm = table_rows(markdown, "| workload | precision | first token")
    assert llm[("Gemma-2-9B",)][2] == ("fit message: Gemma-2-9B in INT4 needs about 33.0 GB of memory, "
                                       "this machine has 21.0 GB available")
    diffusion = table_rows(markdown, "| workload | precision | size, steps")
    flux = diffusion[("FLUX.1-schnell",)]
    assert flux[1] == "INT8" and flux[2].startswith("fit message: FLUX.1-schnell in INT8 needs about 49.0 GB")
    assert "Estimate" not in markdown
    vision = table_rows(markdown, "| workload | precision | throughput")
    resnet_int8 = vision[("resnet-50", "INT8")]
    assert resnet_int8[2].startswith("failed: ToolExecutionError: benchmark_app exited with 1")
    assert "\\|" in resnet_int8[2]  # a | of the message does not break the table
    assert resnet_int8[3] == "27.2"  # the other hint's figures stay


def test_the_run_line_names_the_command_file_machine_and_load(markdown: str) -> None:
    line = markdown.splitlines()[0]
    assert "`python -m benchmarks --only vision,catalog_llm,catalog_diffusion --repeats 1`" in line
    assert "2026-12-03" in line and "`suite-20261203-171607.json`" in line and "AMD EPYC" in line
    assert "0.16 at the start, 3.42 at the end" in line and "0.16–3.2 around the benchmark_app runs" in line


def test_a_failed_or_missing_section_is_said(markdown: str) -> None:
    assert not [line for line in markdown.splitlines() if line.startswith("The `")]  # complete: no notes
    broken = {**RESULTS, "sections": {"catalog_llm": {"error": "RuntimeError: boom"},
                                      "vision": {**RESULTS["sections"]["vision"], "partial": True}}}
    text = workload_table.render(broken, names=NAMES)
    assert "The `catalog_llm` section failed: RuntimeError: boom" in text
    assert "The `vision` section was stopped before its end" in text
    assert "The `catalog_diffusion` section has no results in this file" in text
    assert all(f"| {name} | | not measured in this run |" in text for name in [*LLMS, *PIPELINES])


def test_the_real_catalog_has_twenty_workloads() -> None:
    llms, networks, pipelines = workload_table.catalog_names()
    assert (len(llms), len(networks), len(pipelines)) == (12, 6, 2)
    text = workload_table.render({"sections": {}})
    assert all(f"| {name} |" in text for name in [*llms, *networks, *pipelines])


def test_the_suite_writes_the_tables_next_to_its_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One suite run of the three catalog sections (stubbed) leaves suite-....json and the same name .md;
    the JSON is written while the sections run, and diffusion's repeats follow an explicit --repeats."""
    out = tmp_path / "suite-test.json"
    seen: dict[str, Any] = {}

    def stub(name: str):
        def section(**kwargs: Any) -> dict[str, Any]:
            data = RESULTS["sections"][name]
            kwargs["on_result"]({**data, "results": data.get("results", [])[:1], "rows": data.get("rows", [])[:1]})
            seen[name] = {"partial": json.loads(out.read_text())["sections"][name].get("partial"),
                          "repeats": kwargs.get("repeats")}
            return data
        return section

    monkeypatch.setattr(catalog_vision, "run", stub("vision"))
    monkeypatch.setattr(catalog_llm, "section", stub("catalog_llm"))
    monkeypatch.setattr(catalog_diffusion, "run", stub("catalog_diffusion"))
    monkeypatch.setattr(suite, "table", lambda results: None)
    suite.main(["--only", "vision,catalog_llm,catalog_diffusion", "--repeats", "1", "--output", str(out)])
    assert all(entry["partial"] for entry in seen.values()) and seen["catalog_diffusion"]["repeats"] == 1
    results = json.loads(out.read_text())
    assert set(results["sections"]) == {"vision", "catalog_llm", "catalog_diffusion"}
    markdown = out.with_suffix(".md").read_text()
    assert "`suite-test.json`" in markdown and "| FLUX.1-schnell | INT8 | fit message:" in markdown
    suite.main(["--only", "catalog_diffusion", "--output", str(out)])
    assert seen["catalog_diffusion"]["repeats"] == 3  # the default when --repeats is not given

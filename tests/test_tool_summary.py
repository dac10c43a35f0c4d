"""Tool results as people read them: a benchmark's figures as table rows, the executed precision once."""

from __future__ import annotations

from assistant.answer import ToolCall
from assistant.tool_summary import benchmark_rows, precision_text, summarize

RESULT = {"model": "resnet-50", "device": "CPU", "hint": "latency", "precision": "fp32", "api": "sync",
          "seconds": 2, "throughput_fps": 104.2, "iterations": 208, "measured_ms": 2003.5, "duration_s": 4.61,
          "latency_ms": {"median": 9.31, "avg": 9.5, "min": 8.9, "max": 15.2},
          "command": ["benchmark_app", "-m", "/models/resnet-50/model.xml", "-hint", "latency"],
          "inference_precision": "bf16", "note": "weights are synthetic (random); timings only, not accuracy"}


def test_benchmark_rows_carry_every_figure() -> None:
    rows = dict(benchmark_rows(RESULT))
    assert rows["Throughput"] == "104.20 FPS"
    assert [rows[f"{k} latency"] for k in ("Median", "Average", "Min", "Max")] == [
        "9.31 ms", "9.50 ms", "8.90 ms", "15.20 ms"]
    assert rows["Device"] == "CPU"
    assert rows["Duration"] == "2.0 s measured, 208 iterations (4.6 s in all)"


def test_precision_executed_is_said_once_and_plainly() -> None:
    assert precision_text(RESULT, executed_with="AMX") == "FP32 IR, executed in bf16 on this CPU (AMX)"
    assert precision_text({**RESULT, "inference_precision": "float32"}) == "FP32 IR"
    assert precision_text({**RESULT, "precision": "int8", "inference_precision": "bf16"}) == "INT8 IR"
    assert precision_text({**RESULT, "precision": "as exported", "inference_precision": "f16"}) == (
        "the model as exported, executed in fp16")
    text = summarize(ToolCall(name="run_benchmark", arguments={}, status="ok", result=RESULT))
    assert text.count("bf16") == 1


def test_benchmark_summary_is_a_table_without_the_command() -> None:
    text = summarize(ToolCall(name="run_benchmark", arguments={}, status="ok", result=RESULT), cite=" [1]")
    lines = text.splitlines()
    assert lines[0] == "Measured resnet-50 on CPU with benchmark_app (latency hint, synchronous API):"
    assert "| Median latency | 9.31 ms |" in lines and "| Throughput | 104.20 FPS |" in lines
    assert "benchmark_app -m" not in text and "/models/" not in text
    assert lines[-1].startswith("Latency is measured in synchronous mode") and "[1]." in lines[-1]
    assert lines[-1].endswith("Weights are synthetic (random); timings only, not accuracy.")


def test_system_summary_names_the_isa_features() -> None:
    result = {"cpu": {"name": "AMD EPYC", "physical_cores": 2, "logical_cores": 2,
                      "isa": {"avx2": True, "avx512f": False, "avx512_vnni": True}},
              "memory": {"total_gb": 8.0}, "openvino_version": "2026.4", "devices": ["CPU"]}
    text = summarize(ToolCall(name="system_info", arguments={}, status="ok", result=result))
    assert "ISA: AVX2, AVX-512 VNNI;" in text and "AMD EPYC" in text

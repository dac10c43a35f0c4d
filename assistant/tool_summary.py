"""Plain-language summaries of tool results, with the numbers and the method."""

from __future__ import annotations

from typing import Any

from assistant.answer import ToolCall
from assistant.tools.benchmark import USER_MODEL_PRECISION
from assistant.tools.sysinfo import bf16_unit, isa_names

_PRECISION_NAMES = {"bf16": "bf16", "bfloat16": "bf16", "f32": "fp32", "float32": "fp32", "fp32": "fp32",
                    "f16": "fp16", "float16": "fp16", "fp16": "fp16", "i8": "int8", "int8": "int8"}


def summarize(call: ToolCall, *, cite: str = "") -> str:
    """One paragraph stating what ran, the measured numbers and how (with `cite` after the method)."""
    if call.status != "ok" or call.result is None:
        return f"{call.name} did not complete: {call.error or 'no result'}"
    result = call.result
    if call.name == "run_benchmark":
        return _benchmark(result, cite)
    if call.name == "benchmark_llm":
        return _llm(result, cite)
    if call.name == "benchmark_diffusion":
        return _diffusion(result, cite)
    if call.name == "system_info":
        return _system(result, cite)
    return f"{call.name} finished: {result}"


def _num(value: Any, digits: int = 2) -> str:
    return f"{value:.{digits}f}" if isinstance(value, int | float) else str(value)


def _benchmark(r: dict[str, Any], cite: str) -> str:
    rows = "\n".join(f"| {label} | {value} |" for label, value in benchmark_rows(r))
    return (f"{benchmark_heading(r)}:\n\n| Measurement | Value |\n|---|---|\n{rows}\n\n"
            f"{benchmark_method(r, cite)}")


def benchmark_heading(r: dict[str, Any]) -> str:
    """'Measured resnet-50 on CPU with benchmark_app (latency hint, synchronous API)'."""
    hint = r.get("hint", "latency")
    api = "synchronous" if hint == "latency" else "asynchronous"
    return f"Measured {r.get('model')} on {r.get('device')} with benchmark_app ({hint} hint, {api} API)"


def benchmark_method(r: dict[str, Any], cite: str = "") -> str:
    """How the figures were measured (as the FAQ describes, cited with `cite`) and what they are not."""
    if r.get("hint", "latency") == "latency":
        text = f"Latency is measured in synchronous mode, one inference at a time, as the FAQ describes{cite}."
    else:
        text = f"Throughput uses the asynchronous API with parallel infer requests, as benchmark_app does{cite}."
    if r.get("note"):
        note = str(r["note"])
        text += f" {note[:1].upper()}{note[1:].rstrip('.')}."
    return text


def benchmark_rows(r: dict[str, Any]) -> list[tuple[str, str]]:
    """The figures of a run_benchmark result as (label, value) rows, for a table."""
    latency = r.get("latency_ms") or {}
    rows = [("Throughput", f"{_num(r.get('throughput_fps'))} FPS")]
    rows += [(f"{label} latency", f"{_num(latency.get(key))} ms")
             for key, label in (("median", "Median"), ("avg", "Average"), ("min", "Min"), ("max", "Max"))]
    rows += [("Precision", precision_text(r)), ("Device", str(r.get("device") or "?")),
             ("Duration", _duration(r))]
    return rows


def precision_text(r: dict[str, Any], executed_with: str | None = None) -> str:
    """'FP32 IR, executed in bf16 on this CPU (AMX)': the model's precision and what the device ran."""
    precision = str(r.get("precision") or "")
    stored = "the model as exported" if precision == USER_MODEL_PRECISION else f"{precision.upper()} IR"
    executed = _PRECISION_NAMES.get(str(r.get("inference_precision") or "").lower())
    if executed is None or executed == precision.lower() or precision == "int8":
        return stored
    if executed == "bf16":
        unit = executed_with if executed_with is not None else bf16_unit()
        where = "on this CPU" if str(r.get("device", "")).upper().startswith("CPU") else "on the device"
        return f"{stored}, executed in bf16 {where}" + (f" ({unit})" if unit else "")
    return f"{stored}, executed in {executed}"


def _duration(r: dict[str, Any]) -> str:
    measured = r.get("measured_ms")
    seconds = f"{measured / 1000:.1f} s measured" if isinstance(measured, int | float) else \
        f"{r.get('seconds')} s"
    if isinstance(r.get("iterations"), int):
        seconds += f", {r['iterations']} iterations"
    if isinstance(r.get("duration_s"), int | float):
        seconds += f" ({r['duration_s']:.1f} s in all)"
    return seconds


def _llm(r: dict[str, Any], cite: str) -> str:
    name = f"{r['workload']} ({str(r.get('precision', '')).upper()})" if r.get("workload") else r.get("model", "")
    text = (f"Measured the LLM {name} on {r.get('device', 'CPU')} with openvino-genai "
            f"(llm_bench-style{cite}, warm-up excluded, {r.get('iterations', '?')} iterations, "
            f"{r.get('input_tokens', '?')} prompt tokens, {r.get('output_tokens', '?')} new tokens): "
            f"first-token latency {_num(r.get('first_token_ms'), 1)} ms, second-token latency "
            f"{_num(r.get('second_token_ms'), 1)} ms/token, {_num(r.get('tokens_per_s'), 1)} tokens/s, "
            f"peak memory {_num(r.get('peak_rss_mb'), 0)} MB.")
    if r.get("note"):
        text += f" Note: {r['note']}."
    return text


def _diffusion(r: dict[str, Any], cite: str) -> str:
    text = (f"Measured the diffusion pipeline {r.get('workload')} ({str(r.get('precision', '')).upper()} weights) "
            f"on {r.get('device', 'CPU')} with openvino-genai's Text2ImagePipeline (llm_bench-style{cite}, warm-up "
            f"excluded, {_count(r.get('iterations'), 'image')} of {r.get('width')}x{r.get('height')}, "
            f"{_count(r.get('steps'), 'step')}, {r.get('text_tokens', '?')} text tokens): "
            f"{_num(r.get('seconds_per_image'), 1)} s per image, {_num(r.get('seconds_per_step'), 2)} s per "
            f"denoising step, peak memory {_num(r.get('peak_rss_mb'), 0)} MB.")
    if r.get("note"):
        text += f" Note: {r['note']}."
    return text


def _count(number: Any, noun: str) -> str:
    """'1 image', '4 steps'."""
    return f"{number} {noun}" if number == 1 else f"{number if number is not None else '?'} {noun}s"


def _system(r: dict[str, Any], cite: str) -> str:
    cpu = r.get("cpu") if isinstance(r.get("cpu"), dict) else {}
    name = cpu.get("name") or r.get("cpu_name") or r.get("cpu")
    cores = cpu.get("physical_cores") or r.get("physical_cores")
    threads = cpu.get("logical_cores") or r.get("logical_cores")
    isa = r.get("isa") or cpu.get("isa") or {}
    flags = ", ".join(isa_names(isa)) if isinstance(isa, dict) else str(isa)
    memory = r.get("memory_total_gb") or (r.get("memory") or {}).get("total_gb") if isinstance(
        r.get("memory"), dict | type(None)) else r.get("memory")
    parts = [f"CPU: {name}", f"{cores} physical / {threads} logical cores",
             f"ISA: {flags or 'none of AVX2/AVX-512/VNNI/AMX'}", f"memory: {memory} GB",
             f"OpenVINO {r.get('openvino_version')}", f"devices: {', '.join(r.get('devices') or [])}"]
    text = "; ".join(parts) + "."
    if r.get("int8_note") or r.get("summary"):
        text += " " + str(r.get("int8_note") or r.get("summary")).rstrip(".") + f"{cite}."
    return text

"""Plain-language summaries of tool results, with the numbers and the method."""

from __future__ import annotations

from typing import Any

from assistant.answer import ToolCall


def summarize(call: ToolCall, *, cite: str = "") -> str:
    """One paragraph stating what ran, the measured numbers and how (with `cite` after the method)."""
    if call.status != "ok" or call.result is None:
        return f"{call.name} did not complete: {call.error or 'no result'}"
    result = call.result
    if call.name == "run_benchmark":
        return _benchmark(result, cite)
    if call.name == "benchmark_llm":
        return _llm(result, cite)
    if call.name == "system_info":
        return _system(result, cite)
    return f"{call.name} finished: {result}"


def _num(value: Any, digits: int = 2) -> str:
    return f"{value:.{digits}f}" if isinstance(value, int | float) else str(value)


def _benchmark(r: dict[str, Any], cite: str) -> str:
    latency = r.get("latency_ms") or {}
    hint = r.get("hint", "latency")
    api = "synchronous" if hint == "latency" else "asynchronous"
    text = (f"Measured {r.get('model')} ({str(r.get('precision', '')).upper()}) on {r.get('device')} with "
            f"benchmark_app, {hint} hint, {api} API, for {r.get('seconds')} s: "
            f"median latency {_num(latency.get('median'))} ms (average {_num(latency.get('avg'))}, "
            f"min {_num(latency.get('min'))}, max {_num(latency.get('max'))} ms), "
            f"throughput {_num(r.get('throughput_fps'))} FPS.")
    if hint == "latency":
        text += f" Latency is measured in synchronous mode, one inference at a time, as the FAQ describes{cite}."
    else:
        text += f" Throughput uses the asynchronous API with parallel infer requests, as benchmark_app does{cite}."
    if r.get("note"):
        text += f" Note: {r['note']}"
    if r.get("command"):
        command = r["command"]
        text += f"\nCommand: {' '.join(command) if isinstance(command, list) else command}"
    return text


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


def _system(r: dict[str, Any], cite: str) -> str:
    cpu = r.get("cpu") if isinstance(r.get("cpu"), dict) else {}
    name = cpu.get("name") or r.get("cpu_name") or r.get("cpu")
    cores = cpu.get("physical_cores") or r.get("physical_cores")
    threads = cpu.get("logical_cores") or r.get("logical_cores")
    isa = r.get("isa") or cpu.get("isa") or {}
    flags = ", ".join(k for k, v in isa.items() if v) if isinstance(isa, dict) else str(isa)
    memory = r.get("memory_total_gb") or (r.get("memory") or {}).get("total_gb") if isinstance(
        r.get("memory"), dict | type(None)) else r.get("memory")
    parts = [f"CPU: {name}", f"{cores} physical / {threads} logical cores",
             f"ISA: {flags or 'none of AVX2/AVX-512/VNNI/AMX'}", f"memory: {memory} GB",
             f"OpenVINO {r.get('openvino_version')}", f"devices: {', '.join(r.get('devices') or [])}"]
    text = "; ".join(parts) + "."
    if r.get("int8_note") or r.get("summary"):
        text += " " + str(r.get("int8_note") or r.get("summary")).rstrip(".") + f"{cite}."
    return text

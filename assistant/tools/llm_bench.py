"""The `benchmark_llm` tool: llm_bench-style first/second token latency, tokens/s and memory of a local LLM.

Like OpenVINO's llm_bench: a prompt of exactly `prompt_tokens` tokens, one warm-up run excluded, then
`iterations` runs of exactly `max_new_tokens` tokens (EOS ignored), timed by openvino_genai's perf metrics.
Each run's prompt starts differently so a prefix cache cannot shorten the first-token latency.
"""

from __future__ import annotations

import re
import statistics
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from assistant.config import Settings
from assistant.errors import AssistantError, ToolArgumentError, ToolBusy, ToolExecutionError
from assistant.fitcheck import Need, WorkloadTooLarge, check_fit, fitting_llms, llm_need
from assistant.history import record_run
from assistant.tools.base import ProgressCallback, Tool, ToolContext
from assistant.tools.llm_workloads import (
    DEFAULT_LLM_PRECISION,
    LLM_PRECISIONS,
    LLM_WORKLOADS,
    RANDOM_WEIGHTS_NOTE,
    architecture,
    cached_llm,
    check_precision,
    ensure_llm_workload_in_subprocess,
    is_llm_workload,
)
from assistant.tools.slot import exclusive

_FILLER = (
    "OpenVINO is an open-source toolkit for optimizing and deploying deep learning models. It converts "
    "models from PyTorch, TensorFlow and ONNX, compresses their weights, and runs them on CPUs, GPUs and "
    "NPUs. Latency is measured in synchronous mode; throughput uses many parallel inference requests. "
)
_SHELL_CHARS = re.compile(r"[;&|$`<>!*?{}()\[\]'\"\\\x00-\x1f\x7f\ud800-\udfff]")

PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "model": {"type": "string", "maxLength": 512, "examples": list(LLM_WORKLOADS),
                  "description": "A catalog LLM (one of the examples: built from its published architecture "
                                 "with random weights), or the path of a .gguf file or OpenVINO IR folder under "
                                 "the models folder (default: the assistant's own LLM)."},
        "precision": {"type": "string", "enum": list(LLM_PRECISIONS),
                      "description": f"Weight precision of a catalog LLM (default {DEFAULT_LLM_PRECISION}: "
                                     "4-bit projections, 8-bit embedding and LM head, as published INT4 "
                                     "exports); not for model paths."},
        "prompt_tokens": {"type": "integer", "minimum": 16, "maximum": 4096, "default": 128,
                          "description": "Exact prompt length in tokens."},
        "max_new_tokens": {"type": "integer", "minimum": 1, "maximum": 1024, "default": 64,
                           "description": "Tokens generated per run (EOS ignored)."},
        "iterations": {"type": "integer", "minimum": 1, "maximum": 20, "default": 3,
                       "description": "Measured runs after one excluded warm-up run."},
    },
    "additionalProperties": False,
}


def benchmark_llm(llm_or_path: Any, *, prompt_tokens: int = 128, max_new_tokens: int = 64,
                  iterations: int = 3, device: str = "CPU", cache_dir: Path | None = None,
                  progress: ProgressCallback | None = None,
                  cancel: threading.Event | None = None) -> dict[str, Any]:
    """Measure an OpenVINOLLM (or load the model at a path) llm_bench-style; return metrics as a dict."""
    from assistant.llm import GGUF_PROPERTIES, OpenVINOLLM

    report = progress or (lambda fraction, message: None)
    llm = llm_or_path
    with _PeakRss() as memory:  # like llm_bench, the peak includes loading when this call loads the model
        if isinstance(llm, OpenVINOLLM) and llm.prompt_lookup:
            # prompt-lookup decoding makes repetitive benchmark prompts look unrealistically fast:
            # measure plain decoding of the same model, as llm_bench does
            report(0.0, f"loading {llm.path.name} for plain decoding")
            llm = OpenVINOLLM(llm.path, device=llm.device, cache_dir=cache_dir,
                              properties={**llm.properties, "prompt_lookup": False})
        elif not isinstance(llm, OpenVINOLLM):
            report(0.0, f"loading {Path(llm_or_path).name}")
            plain = {**GGUF_PROPERTIES, "prompt_lookup": False} if str(llm_or_path).endswith(".gguf") else None
            llm = OpenVINOLLM(Path(llm_or_path), device=device, cache_dir=cache_dir, properties=plain)
        runs = []
        for index in range(iterations + 1):
            if cancel is not None and cancel.is_set():
                raise ToolExecutionError("benchmark_llm was cancelled")
            label = "warm-up" if index == 0 else f"iteration {index}/{iterations}"
            report(index / (iterations + 1), label)
            runs.append(_run_once(llm, _prompt_ids(llm, prompt_tokens, index), max_new_tokens))
    report(1.0, "done")
    return _summary(llm, runs[1:], memory, prompt_tokens=prompt_tokens, max_new_tokens=max_new_tokens,
                    reused=llm is llm_or_path)


def _prompt_ids(llm: Any, prompt_tokens: int, run: int) -> list[int]:
    """Exactly `prompt_tokens` ids; the run number leads so no two runs share a cached prefix."""
    ids = llm.tokenize(f"Run {run}. ")
    filler = llm.tokenize(_FILLER)
    while len(ids) < prompt_tokens:
        ids += filler
    return ids[:prompt_tokens]


def _run_once(llm: Any, ids: list[int], max_new_tokens: int) -> dict[str, float]:
    config = llm.generation_config(max_new_tokens)
    config.ignore_eos = True
    config.min_new_tokens = max_new_tokens
    try:
        result = llm.generate_ids(ids, config)  # alone on the pipeline: one stream, as llm_bench measures
    except RuntimeError as exc:
        raise ToolExecutionError(f"generation failed during the benchmark: {str(exc).strip()[-300:]}",
                                 hint="Keep prompt_tokens + max_new_tokens within the model's context."
                                 ) from None
    metrics = result.perf_metrics
    return {"first_token_ms": float(metrics.get_ttft().mean),
            "second_token_ms": float(metrics.get_tpot().mean),
            "tokens_per_s": float(metrics.get_throughput().mean),
            "generate_ms": float(metrics.get_generate_duration().mean),
            "input_tokens": int(metrics.get_num_input_tokens()),
            "output_tokens": int(metrics.get_num_generated_tokens())}


def _summary(llm: Any, runs: list[dict[str, float]], memory: _PeakRss, *, prompt_tokens: int,
             max_new_tokens: int, reused: bool) -> dict[str, Any]:
    import openvino as ov
    import openvino_genai

    def median(key: str) -> float:
        return round(statistics.median(run[key] for run in runs), 3)

    return {
        "model": str(llm.path), "device": llm.device,
        "openvino_version": ov.get_version(), "openvino_genai_version": openvino_genai.get_version(),
        "prompt_tokens": prompt_tokens, "max_new_tokens": max_new_tokens, "iterations": len(runs),
        "warmup_excluded": 1,
        "first_token_ms": median("first_token_ms"), "second_token_ms": median("second_token_ms"),
        "tokens_per_s": median("tokens_per_s"), "generate_ms": median("generate_ms"),
        "input_tokens": int(median("input_tokens")), "output_tokens": int(median("output_tokens")),
        "peak_rss_mb": round(memory.peak / 2**20, 1), "rss_before_mb": round(memory.start / 2**20, 1),
        "load_ms": None if reused else round(llm.load_ms, 1),
        "per_iteration": [{key: round(value, 3) for key, value in run.items()} for run in runs],
        "method": "llm_bench-style: exact prompt length, 1 warm-up excluded, EOS ignored, greedy; "
                  "second_token_ms = mean latency of each output token after the first; peak_rss_mb is the "
                  "whole process.",
    }


class _PeakRss:
    """Samples this process's resident memory in a thread; `peak` is the maximum seen (bytes)."""

    def __init__(self, interval_s: float = 0.02) -> None:
        import psutil

        self._process = psutil.Process()
        self._interval = interval_s
        self._stop = threading.Event()
        self.start = self.peak = self._process.memory_info().rss
        self._thread = threading.Thread(target=self._sample, name="rss-sampler", daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(self._interval):
            self.peak = max(self.peak, self._process.memory_info().rss)

    def __enter__(self) -> _PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss)


# -- tool declaration ---------------------------------------------------------------------------------

def check_arguments(arguments: dict[str, Any], settings: Settings) -> None:
    """Allow only models under the models folder or the allowed benchmark folders; no shell tricks."""
    model = arguments.get("model")
    if model is not None and is_llm_workload(model):
        check_fit(catalog_need(arguments, settings), settings, alternatives=_smaller(arguments, settings))
        return
    if arguments.get("precision") is not None:
        raise ToolArgumentError("benchmark_llm: precision applies to catalog LLMs only",
                                hint=f"Catalog LLMs: {', '.join(LLM_WORKLOADS)}. A model path runs as it is.")
    if model is None:
        return
    resolve_model_argument(model, settings)


def catalog_need(arguments: dict[str, Any], settings: Settings) -> Need:
    """Memory and disk a catalog LLM run with these arguments needs (its build too when not cached)."""
    name = arguments["model"]
    precision = check_precision(arguments.get("precision") or DEFAULT_LLM_PRECISION)
    tokens = int(arguments.get("prompt_tokens", 128)) + int(arguments.get("max_new_tokens", 64))
    return llm_need(name, precision, tokens=tokens, built=cached_llm(settings.models_dir, name, precision) is not None)


def _smaller(arguments: dict[str, Any], settings: Settings) -> str:
    precision = arguments.get("precision") or DEFAULT_LLM_PRECISION
    tokens = int(arguments.get("prompt_tokens", 128)) + int(arguments.get("max_new_tokens", 64))
    fits = fitting_llms(settings, precision, tokens=tokens)
    return (f"Catalog LLMs that fit now in {precision.upper()}: {', '.join(fits)}." if fits
            else f"No catalog LLM fits this machine now in {precision.upper()}.")


def benchmark_catalog_llm(name: str, precision: str, settings: Settings, *, prompt_tokens: int,
                          max_new_tokens: int, iterations: int, progress: ProgressCallback | None = None,
                          cancel: threading.Event | None = None) -> dict[str, Any]:
    """Fit-check, build (first time) and measure a catalog LLM with random weights; the result says so."""
    report = progress or (lambda fraction, message: None)
    need = catalog_need({"model": name, "precision": precision, "prompt_tokens": prompt_tokens,
                         "max_new_tokens": max_new_tokens}, settings)
    have = check_fit(need, settings)
    built_now = cached_llm(settings.models_dir, name, precision) is None
    folder = ensure_llm_workload_in_subprocess(name, precision, settings.models_dir,
                                               timeout_s=settings.tool_timeout_s, cancel=cancel,
                                               progress=lambda fraction, message: report(0.5 * fraction, message))
    if cancel is not None and cancel.is_set():
        raise ToolExecutionError("benchmark_llm was cancelled")
    # no compiled-blob cache: it would add another copy of the weights to the disk for every catalog LLM
    result = benchmark_llm(folder, prompt_tokens=prompt_tokens, max_new_tokens=max_new_tokens,
                           iterations=iterations, device=settings.device, cache_dir=None,
                           progress=lambda fraction, message: report(0.5 + 0.5 * fraction, message), cancel=cancel)
    arch = architecture(name)
    result.update({"model": name, "model_path": result["model"], "workload": name, "precision": precision,
                   "weights": "random", "note": RANDOM_WEIGHTS_NOTE,
                   "architecture_source": arch.source, "architecture_differences": list(arch.differences),
                   "built_now": built_now,
                   "fit": {"memory_needed_gb": round(need.memory / 1e9, 1),
                           "memory_available_gb": round(have.memory / 1e9, 1),
                           "disk_needed_gb": round(need.disk / 1e9, 1), "disk_free_gb": round(have.disk / 1e9, 1),
                           "basis": need.basis}})
    return result


def resolve_model_argument(model: str, settings: Settings) -> Path:
    """The checked path for a `model` argument (manifest name, or path relative to models_dir)."""
    from assistant.models import PULL_HINT, check_model_path, load_manifest

    _default, entries = load_manifest()
    if model in entries:
        path = entries[model].path(settings)
        if not path.is_file():
            raise ToolArgumentError(f"benchmark_llm: model {model} is not downloaded", hint=PULL_HINT)
        return path
    roots = [settings.models_dir, *settings.bench_allowed_dirs]
    allowed = "; ".join(str(root) for root in roots)
    if not model.strip() or _SHELL_CHARS.search(model) or ".." in Path(model).parts or model.startswith("-"):
        raise ToolArgumentError(f"benchmark_llm: model {model!r} is not an acceptable path",
                                hint=f"Give a plain path to a .gguf file or IR folder under: {allowed}")
    path = Path(model).expanduser()
    path = (path if path.is_absolute() else settings.models_dir / path).resolve()
    if not any(path.is_relative_to(root.expanduser().resolve()) for root in roots):
        raise ToolArgumentError(f"benchmark_llm: {path} is outside the allowed model folders",
                                hint=f"Put the model under one of: {allowed}")
    try:
        return check_model_path(path)
    except AssistantError as exc:
        raise ToolArgumentError(f"benchmark_llm: {exc.message}", hint=exc.hint) from None


def _target(model: str | None, settings: Settings, get_llm: Callable[[], Any] | None,
            progress: ProgressCallback) -> Any:
    """What to measure: a model path, or the assistant's own (already loaded when possible) LLM."""
    from assistant.models import resolve_llm_path

    path = resolve_model_argument(model, settings) if model else None
    if path is not None and not _is_assistant_model(path, settings):
        return path
    if get_llm is not None:
        target = get_llm()
    elif not settings.llm_endpoint:
        return resolve_llm_path(settings, progress=progress)  # loaded (and its load time reported) later
    if get_llm is None or not hasattr(target, "pipeline"):
        raise ToolExecutionError("benchmark_llm measures a local OpenVINO model, but the assistant uses a "
                                 "remote LLM endpoint", hint="Pass model=PATH of a .gguf file or IR folder.")
    return target


def _is_assistant_model(path: Path, settings: Settings) -> bool:
    """True when `path` is the model the assistant itself runs (so the loaded one can be reused)."""
    from assistant.models import load_manifest

    if settings.llm_endpoint:
        return False
    default, entries = load_manifest()
    spec = settings.model or default
    own = entries[spec].path(settings) if spec in entries else Path(spec).expanduser()
    return own.exists() and own.resolve() == path.resolve()


def make_benchmark_llm_tool(get_llm: Callable[[], Any] | None = None) -> Tool:
    """The `benchmark_llm` tool; `get_llm` returns the assistant's loaded LLM (None: load from settings)."""

    def run(arguments: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
        settings = ctx.settings
        model = arguments.get("model")
        if model is not None and is_llm_workload(model):
            precision = arguments.get("precision") or DEFAULT_LLM_PRECISION
            try:
                with exclusive(settings, "benchmark_llm"):
                    result = benchmark_catalog_llm(model, precision, settings,
                                                   prompt_tokens=arguments["prompt_tokens"],
                                                   max_new_tokens=arguments["max_new_tokens"],
                                                   iterations=arguments["iterations"], progress=ctx.progress,
                                                   cancel=ctx.cancel)
            except (ToolExecutionError, ToolBusy, WorkloadTooLarge):
                raise
            except AssistantError as exc:
                raise ToolExecutionError(f"benchmark_llm: {exc.message}", hint=exc.hint) from None
            record_run(settings.history_db, "benchmark_llm",
                       {**arguments, "precision": precision, "device": settings.device}, result)
            return result
        try:
            with exclusive(settings, "benchmark_llm"):
                result = benchmark_llm(_target(arguments.get("model"), settings, get_llm, ctx.progress),
                                       prompt_tokens=arguments["prompt_tokens"],
                                       max_new_tokens=arguments["max_new_tokens"],
                                       iterations=arguments["iterations"], device=settings.device,
                                       cache_dir=settings.ov_cache_dir, progress=ctx.progress,
                                       cancel=ctx.cancel)
            record_run(settings.history_db, "benchmark_llm", {**arguments, "device": settings.device}, result)
            return result
        except (ToolExecutionError, ToolBusy):
            raise
        except AssistantError as exc:
            raise ToolExecutionError(f"benchmark_llm: {exc.message}", hint=exc.hint) from None

    return Tool(
        name="benchmark_llm",
        description="Measure an LLM the way OpenVINO's llm_bench does: first-token latency, "
                    "second-token latency (ms per output token), tokens per second and peak memory, "
                    "warm-up excluded. A catalog LLM is built from its published architecture with random "
                    "INT4/INT8 weights after a check that it fits this machine's memory and disk.",
        parameters=PARAMETERS,
        function=run,
        exclusive=True,
        check=check_arguments,
    )

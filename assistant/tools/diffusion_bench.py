"""The `benchmark_diffusion` tool: seconds per image and per denoising step of a catalog diffusion pipeline.

As the FAQ says for diffusers, measured the way OpenVINO GenAI's llm_bench does: openvino-genai's
Text2ImagePipeline at the pipeline's default image size and guidance, one warm-up image excluded, then
`iterations` images of `steps` denoising steps, timed by the pipeline's own performance metrics. The pipeline is
built from its published architecture with random weights after a check that it fits this machine.
"""

from __future__ import annotations

import re
import statistics
import threading
from typing import Any

from assistant.config import Settings
from assistant.errors import AssistantError, ToolBusy, ToolExecutionError
from assistant.fitcheck import Need, WorkloadTooLarge, check_fit, diffusion_need
from assistant.history import record_run
from assistant.tools.base import ProgressCallback, Tool, ToolContext
from assistant.tools.diffusion_workloads import (
    DEFAULT_DIFFUSION_PRECISION,
    DIFFUSION_PRECISIONS,
    DIFFUSION_WORKLOADS,
    RANDOM_WEIGHTS_NOTE,
    cached_diffusion,
    diffusion_architecture,
    ensure_diffusion_in_subprocess,
)
from assistant.tools.slot import exclusive

DEFAULT_STEPS = 4
BUILD_TIMEOUT_S = 3600  # the one-time build (an FP32 UNet traced and compressed) may outlast tool_timeout_s
PROMPT = "a photograph of an astronaut riding a horse on the moon, detailed, high quality"

PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "model": {"type": "string", "enum": list(DIFFUSION_WORKLOADS), "default": DIFFUSION_WORKLOADS[0],
                  "description": "A catalog diffusion pipeline, built from its published architecture with random "
                                 "weights."},
        "precision": {"type": "string", "enum": list(DIFFUSION_PRECISIONS), "default": DEFAULT_DIFFUSION_PRECISION,
                      "description": "Weight precision (NNCF weight compression; int8 as optimum-cli's "
                                     "--weight-format int8, int4 for the linear layers, or fp16)."},
        "steps": {"type": "integer", "minimum": 1, "maximum": 50, "default": DEFAULT_STEPS,
                  "description": "Denoising steps per image (seconds per step are reported too)."},
        "iterations": {"type": "integer", "minimum": 1, "maximum": 10, "default": 1,
                       "description": "Measured images after one excluded warm-up image."},
    },
    "additionalProperties": False,
}


_STEPS = re.compile(r"\b(\d{1,3})\s*(?:denoising\s+|inference\s+|diffusion\s+)?steps?\b", re.I)
_IMAGES = re.compile(r"\b(\d{1,2})\s*(?:images?|iterations?|runs|times|pictures?)\b", re.I)
_INT4 = re.compile(r"(?<![A-Za-z0-9])int-?4(?![0-9])|4-?bit", re.I)


def arguments_from_text(question: str, found: dict[str, Any]) -> dict[str, Any]:
    """benchmark_diffusion arguments from a request and what the router already read from it (model,
    precision); steps and images are read here ("4 steps", "3 images")."""
    arguments: dict[str, Any] = {"model": found["model"]}
    if _INT4.search(question):
        arguments["precision"] = "int4"
    elif found.get("precision") in DIFFUSION_PRECISIONS:
        arguments["precision"] = found["precision"]
    if match := _STEPS.search(question):
        arguments["steps"] = int(match.group(1))
    if match := _IMAGES.search(question):
        arguments["iterations"] = int(match.group(1))
    return arguments


def catalog_need(arguments: dict[str, Any], settings: Settings) -> Need:
    """Memory and disk a run with these arguments needs (its build too when not cached)."""
    name = arguments.get("model") or DIFFUSION_WORKLOADS[0]
    precision = arguments.get("precision") or DEFAULT_DIFFUSION_PRECISION
    return diffusion_need(name, precision, built=cached_diffusion(settings.models_dir, name, precision) is not None)


def check_arguments(arguments: dict[str, Any], settings: Settings) -> None:
    """The fit check, before anything is built or loaded."""
    check_fit(catalog_need(arguments, settings), settings, alternatives=_alternatives(arguments, settings))


def _alternatives(arguments: dict[str, Any], settings: Settings) -> str:
    from assistant.fitcheck import capacity

    have = capacity(settings)
    fits = [f"{name} in {precision.upper()}" for name in DIFFUSION_WORKLOADS for precision in DIFFUSION_PRECISIONS
            if (need := catalog_need({"model": name, "precision": precision}, settings)).memory <= have.memory
            and need.disk <= have.disk and diffusion_architecture(name).buildable()]
    return (f"Diffusion pipelines that fit now: {', '.join(fits)}." if fits
            else "No catalog diffusion pipeline fits this machine now.")


def benchmark_pipeline(folder: Any, *, steps: int, iterations: int, width: int, height: int,
                       max_sequence_length: int | None = None, device: str = "CPU",
                       progress: ProgressCallback | None = None,
                       cancel: threading.Event | None = None) -> dict[str, Any]:
    """Load a Text2ImagePipeline folder and time one warm-up and `iterations` images; metrics as a dict.
    `max_sequence_length` is the T5 prompt length of a FLUX pipeline (openvino-genai's default is 512)."""
    import numpy as np
    import openvino as ov
    import openvino_genai

    from assistant.tools.llm_bench import _PeakRss

    report = progress or (lambda fraction, message: None)
    options = {} if max_sequence_length is None else {"max_sequence_length": max_sequence_length}
    images: list[dict[str, Any]] = []
    with _PeakRss() as memory:
        report(0.0, f"loading the pipeline on {device}")
        pipeline = openvino_genai.Text2ImagePipeline(str(folder), device)
        load_ms = float(pipeline.get_performance_metrics().get_load_time())
        shape = ""
        for index in range(iterations + 1):
            if cancel is not None and cancel.is_set():
                raise ToolExecutionError("benchmark_diffusion was cancelled")
            report(index / (iterations + 1), "warm-up image" if index == 0 else f"image {index}/{iterations}")
            try:  # the warm-up image (1 step) compiles and allocates for the same shapes, faster
                image = pipeline.generate(PROMPT, width=width, height=height,
                                          num_inference_steps=1 if index == 0 else steps, rng_seed=index + 1,
                                          **options)
            except RuntimeError as exc:
                raise ToolExecutionError(f"image generation failed: {str(exc).strip()[-300:]}") from None
            pixels = np.asarray(image.data)
            shape = "x".join(str(d) for d in pixels.shape) + f" {pixels.dtype}"
            images.append(_metrics(pipeline.get_performance_metrics()))
        del pipeline
    report(1.0, "done")
    measured = images[1:]

    def median(key: str) -> float:
        return round(statistics.median(run[key] for run in measured), 1)

    step_ms = [ms for run in measured for ms in run["step_ms"]]
    return {
        "device": device, "width": width, "height": height, "steps": steps, "iterations": len(measured),
        "warmup_excluded": 1, "denoising_iterations": len(measured[0]["step_ms"]),
        "seconds_per_image": round(median("generate_ms") / 1000, 2),
        "seconds_per_step": round(statistics.median(step_ms) / 1000, 3),
        "denoiser_ms_per_step": median("denoiser_ms"), "text_encoder_ms": median("text_encoder_ms"),
        "vae_decoder_ms": median("vae_decoder_ms"), "load_ms": round(load_ms, 1),
        "peak_rss_mb": round(memory.peak / 2**20, 1), "rss_before_mb": round(memory.start / 2**20, 1),
        "image": shape, "prompt": PROMPT, **options,
        "per_image": [{key: value for key, value in run.items() if key != "step_ms"} for run in measured],
        "openvino_version": ov.get_version(), "openvino_genai_version": openvino_genai.get_version(),
        "method": "llm_bench-style for diffusers: openvino-genai Text2ImagePipeline, 1 warm-up image (1 step) "
                  "excluded; "
                  "seconds_per_image = whole generate() (text encoder, denoising steps, VAE decoder), "
                  "seconds_per_step = median denoising iteration; peak_rss_mb is the whole process.",
    }


def _metrics(metrics: Any) -> dict[str, Any]:
    """One image's figures from openvino-genai's ImageGenerationPerfMetrics (durations in ms)."""
    raw = metrics.raw_metrics
    steps = [float(us) / 1000 for us in raw.iteration_durations]
    denoiser = [float(us) / 1000 for us in (raw.unet_inference_durations or raw.transformer_inference_durations)]
    encoders = metrics.get_text_encoder_infer_duration()
    return {"generate_ms": round(float(metrics.get_generate_duration()), 1),
            "step_ms": steps,
            "denoiser_ms": round(statistics.median(denoiser), 1) if denoiser else 0.0,
            "text_encoder_ms": round(sum(float(v) for v in encoders.values()), 1),
            "vae_decoder_ms": round(float(metrics.get_vae_decoder_infer_duration()), 1)}


def benchmark_catalog_diffusion(name: str, precision: str, settings: Settings, *, steps: int, iterations: int,
                                progress: ProgressCallback | None = None,
                                cancel: threading.Event | None = None) -> dict[str, Any]:
    """Fit-check, build (first time) and measure a catalog diffusion pipeline; the result says weights are random."""
    report = progress or (lambda fraction, message: None)
    arch = diffusion_architecture(name)
    need = catalog_need({"model": name, "precision": precision}, settings)
    have = check_fit(need, settings)
    built_now = cached_diffusion(settings.models_dir, name, precision) is None
    folder = ensure_diffusion_in_subprocess(name, precision, settings.models_dir,
                                            timeout_s=max(settings.tool_timeout_s, BUILD_TIMEOUT_S),
                                            cancel=cancel,
                                            progress=lambda fraction, message: report(0.5 * fraction, message))
    if cancel is not None and cancel.is_set():
        raise ToolExecutionError("benchmark_diffusion was cancelled")
    result = benchmark_pipeline(folder, steps=steps, iterations=iterations, width=arch.width, height=arch.height,
                                max_sequence_length=arch.max_sequence_length(), device=settings.device, cancel=cancel,
                                progress=lambda fraction, message: report(0.5 + 0.5 * fraction, message))
    result = {"model": name, "workload": name, "precision": precision, "model_path": str(folder), **result,
              "text_tokens": arch.tokens, "guidance_scale": arch.guidance_scale, "denoiser_batch": arch.batch(),
              "weights": "random", "note": RANDOM_WEIGHTS_NOTE, "architecture_source": arch.source,
              "built_now": built_now,
              "fit": {"memory_needed_gb": round(need.memory / 1e9, 1),
                      "memory_available_gb": round(have.memory / 1e9, 1),
                      "disk_needed_gb": round(need.disk / 1e9, 1), "disk_free_gb": round(have.disk / 1e9, 1),
                      "basis": need.basis}}
    return result


def make_benchmark_diffusion_tool() -> Tool:
    """The `benchmark_diffusion` tool."""

    def run(arguments: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
        settings = ctx.settings
        name = arguments.get("model") or DIFFUSION_WORKLOADS[0]
        precision = arguments.get("precision") or DEFAULT_DIFFUSION_PRECISION
        try:
            with exclusive(settings, "benchmark_diffusion"):
                result = benchmark_catalog_diffusion(name, precision, settings, steps=arguments["steps"],
                                                     iterations=arguments["iterations"], progress=ctx.progress,
                                                     cancel=ctx.cancel)
        except (ToolExecutionError, ToolBusy, WorkloadTooLarge):
            raise
        except AssistantError as exc:
            raise ToolExecutionError(f"benchmark_diffusion: {exc.message}", hint=exc.hint) from None
        record_run(settings.history_db, "benchmark_diffusion",
                   {**arguments, "model": name, "precision": precision, "device": settings.device}, result)
        return result

    return Tool(
        name="benchmark_diffusion",
        description="Measure a catalog diffusion pipeline (Stable-Diffusion-V1-5, FLUX.1-schnell) with "
                    "openvino-genai's Text2ImagePipeline, llm_bench-style: seconds per image and per denoising "
                    "step at the pipeline's default image size, peak memory, warm-up excluded. Built from the "
                    "published architecture with random weights after a check that it fits this machine.",
        parameters=PARAMETERS,
        function=run,
        exclusive=True,
        check=check_arguments,
    )

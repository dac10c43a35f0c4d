"""Fit check: the memory and disk a catalog workload needs in a precision, against what this machine has.

Runs before anything is built or loaded, so a workload that cannot fit gets a clear answer ("Gemma-2-9B in
INT8 needs about 33 GB of memory, this machine has 20 GB available") instead of a crash or a swap storm.
The factors below were measured here (build and benchmark of DeepSeek-R1-Distill-Qwen-1.5B INT4, peak
resident memory of the process, /usr/bin/time -v) and rounded up:
  build (GGUF written, read and saved as IR by openvino_genai)  3.9 GB for 1.23 GB of weights: 3.2x
  benchmark (IR read, compiled for CPU, 128+16 tokens)           2.5 GB: 2.0x + the KV cache
and by the catalog_llm benchmark section: run peaks of 9.3 GB for Mistral-7B INT4 (4.1 GB of weights) and
8.8 GB for Llama-2-7b-chat (3.9 GB): 2.1-2.2x + the process base.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from assistant.config import Settings
from assistant.errors import ToolArgumentError

GB = 1e9
BUILD_FACTOR = 3.3  # peak memory of a build per byte of weights (measured 3.2x)
RUN_FACTOR = 2.4  # peak memory of a benchmark per byte of weights (measured 2.0-2.2x: file pages + CPU layout)
PROCESS_BASE = 0.6 * GB  # Python, OpenVINO, openvino_genai, tokenizers, the assistant itself
DISK_MARGIN = 0.5 * GB


class WorkloadTooLarge(ToolArgumentError):
    """The workload needs more memory or disk than this machine has free; nothing was built or loaded."""

    exit_code = 3


@dataclass(frozen=True)
class Need:
    """What one run of a workload needs: peak memory and new disk space, in bytes, with how it was estimated."""

    workload: str
    precision: str
    memory: int
    disk: int
    basis: str


@dataclass(frozen=True)
class Capacity:
    """Memory available now and disk free where the models are, in bytes."""

    memory: int
    disk: int


def capacity(settings: Settings) -> Capacity:
    """This machine's available memory and free disk under models_dir (capped by the fit_* settings)."""
    import psutil

    memory = psutil.virtual_memory().available
    folder = Path(settings.models_dir)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    disk = shutil.disk_usage(folder).free
    if settings.fit_memory_gb is not None:
        memory = min(memory, int(settings.fit_memory_gb * GB))
    if settings.fit_disk_gb is not None:
        disk = min(disk, int(settings.fit_disk_gb * GB))
    return Capacity(memory=memory, disk=disk)


def llm_need(name: str, precision: str, *, tokens: int, built: bool) -> Need:
    """Memory and disk to build (unless `built`) and benchmark a catalog LLM for `tokens` tokens of context."""
    from assistant.tools.llm_workloads import architecture

    arch = architecture(name)
    weights = arch.weight_bytes(precision)
    run = RUN_FACTOR * weights + arch.kv_cache_bytes(tokens) + PROCESS_BASE
    build = 0 if built else BUILD_FACTOR * weights + PROCESS_BASE
    disk = 0 if built else 2 * weights + DISK_MARGIN  # the GGUF and the IR exist together for a moment
    basis = (f"{weights / GB:.1f} GB of {precision.upper()} weights ({sum(arch.parameters().values()) / 1e9:.2f}B "
             f"parameters); {'cached build' if built else f'build peak {BUILD_FACTOR}x the weights'}, "
             f"run peak {RUN_FACTOR}x + KV cache of {tokens} tokens")
    return Need(workload=name, precision=precision, memory=int(max(run, build)), disk=int(disk), basis=basis)


def check_fit(need: Need, settings: Settings, *, alternatives: str = "") -> Capacity:
    """Raise WorkloadTooLarge when `need` exceeds this machine's memory or disk; return the capacity."""
    have = capacity(settings)
    label = f"{need.workload} in {need.precision.upper()}"
    if need.memory > have.memory:
        raise WorkloadTooLarge(
            f"{label} needs about {need.memory / GB:.1f} GB of memory, this machine has "
            f"{have.memory / GB:.1f} GB available",
            hint=f"Estimate: {need.basis}. Close other programs, or pick a smaller precision or workload."
                 + (f" {alternatives}" if alternatives else ""))
    if need.disk > have.disk:
        raise WorkloadTooLarge(
            f"{label} needs about {need.disk / GB:.1f} GB of free disk to build, {settings.models_dir} has "
            f"{have.disk / GB:.1f} GB free",
            hint="Free disk space (built workloads are under models/workloads/) or set OVPERF_MODELS_DIR "
                 "to a larger disk.")
    return have


def fitting_llms(settings: Settings, precision: str, *, tokens: int) -> list[str]:
    """Catalog LLMs whose build and run fit this machine now in `precision` (cached ones count as built)."""
    from assistant.tools.llm_workloads import LLM_WORKLOADS, cached_llm

    have = capacity(settings)
    names = []
    for name in LLM_WORKLOADS:
        need = llm_need(name, precision, tokens=tokens,
                        built=cached_llm(settings.models_dir, name, precision) is not None)
        if need.memory <= have.memory and need.disk <= have.disk:
            names.append(name)
    return names


# Diffusion pipelines (see diffusion_workloads): Text2ImagePipeline holds every component compiled at once, and
# its activations grow with the image. Measured here on Stable-Diffusion-V1-5 INT8 at 512x512 (peak resident
# memory, /usr/bin/time -v): build 6.7 GB for a 3.4 GB FP32 UNet (1.8x + the process base); benchmark 7.5 GB for
# 1.0 GB of weights, i.e. 4.5 GB over 2.4x the weights, 2.1x the largest attention score matrix (the
# activation proxy below). Calibrated on that one pipeline and rounded up. FLUX's networks are built in FP16
# (diffusion_workloads.HALF_BUILD_PIPELINES); its build peak was measured on the FLUX transformer and T5 encoder at
# their published widths with fewer blocks (0.5-1.2B parameters, peak resident memory over the process before the
# build): 1.6x (FP16) to 2.1x (INT8) the FP16 weights, as convert_model copies the weights and NNCF compresses them.
DIFFUSION_RUN_FACTOR = RUN_FACTOR  # peak of a benchmark per byte of weights (the LLM factor)
DIFFUSION_ACTIVATION_FACTOR = 2.2  # activation peak per byte of the largest attention score matrix
DIFFUSION_BUILD_FACTOR = 2.0  # peak of an FP32 build per byte of the largest component's FP32 weights
DIFFUSION_HALF_BUILD_FACTOR = 2.2  # peak of an FP16 build per byte of the largest component's FP16 weights


def diffusion_need(name: str, precision: str, *, built: bool) -> Need:
    """Memory and disk to build (unless `built`) and benchmark a catalog diffusion pipeline at its default size."""
    from assistant.tools.diffusion_workloads import diffusion_architecture

    arch = diffusion_architecture(name)
    weights = arch.weight_bytes(precision)
    activations = DIFFUSION_ACTIVATION_FACTOR * arch.attention_bytes()
    run = DIFFUSION_RUN_FACTOR * weights + activations + PROCESS_BASE
    largest = max(arch.components.values(), key=lambda c: c.parameters)
    disk = 0 if built else weights + DISK_MARGIN
    built = built or not arch.buildable()  # no build here: what counts is what running it takes
    per_parameter = arch.build_bytes_per_parameter()
    dtype, factor = ("FP16", DIFFUSION_HALF_BUILD_FACTOR) if per_parameter == 2 else ("FP32", DIFFUSION_BUILD_FACTOR)
    build = 0 if built else factor * per_parameter * largest.parameters + PROCESS_BASE
    basis = (f"{weights / GB:.1f} GB of {precision.upper()} weights ({arch.parameters() / 1e9:.2f}B parameters: "
             + ", ".join(f"{role} {c.parameters / 1e9:.2f}B" for role, c in arch.components.items())
             + f"); run peak {DIFFUSION_RUN_FACTOR}x the weights + {activations / GB:.1f} GB of activations at "
             f"{arch.width}x{arch.height} ({DIFFUSION_ACTIVATION_FACTOR}x the largest attention score matrix)"
             + ("; no random-weight build here (a component has no builder)"
                if not arch.buildable() else "; cached build" if built else
                f"; build peak {factor}x the {dtype} weights of its largest component "
                f"({largest.role}, {per_parameter * largest.parameters / GB:.1f} GB), built one component at a time")
             + f": run {run / GB:.1f} GB" + ("" if built else f", build {build / GB:.1f} GB")
             + ("" if built else f" (the {'build' if build > run else 'run'} sets the need)"))
    return Need(workload=name, precision=precision, memory=int(max(run, build)), disk=int(disk), basis=basis)

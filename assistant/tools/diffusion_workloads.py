"""Catalog diffusion pipelines built offline from their published architecture, with random weights.

The architectures (every component's config values and source) are in
`assistant/data/diffusion_architectures.json`. A build makes each component from its diffusers/transformers
class with seeded random weights, one component at a time, converts it with `openvino.convert_model`,
compresses its weights (FP16, or INT8/INT4 with NNCF weight compression, as `optimum-cli export openvino
--weight-format` does) and writes the folder layout openvino-genai's Text2ImagePipeline loads:
  Stable-Diffusion-V1-5  model_index.json, scheduler/, tokenizer/, text_encoder/ (CLIP), unet/, vae_decoder/
  FLUX.1-schnell         model_index.json, scheduler/, tokenizer/, tokenizer_2/, text_encoder/ (CLIP),
                         text_encoder_2/ (T5 encoder), transformer/ (MMDiT), vae_decoder/
FLUX's networks are made in FP16 (torch) and converted with their linear and embedding weights kept 16-bit
(as optimum-intel exports 16-bit models), so a build holds 2 bytes per parameter, not 4; the others in FP32.
The CLIP tokenizer is synthesized (byte-level BPE vocabulary at the published vocabulary size) and pads or cuts
every prompt to the published 77 tokens, so the text encoder does the published work; FLUX's T5 tokenizer is
synthesized too (a SentencePiece-style unigram vocabulary of the published size) and cuts prompts at the
published 256 tokens, to which the pipeline pads them (benchmark_diffusion passes max_sequence_length).
Builds go to ``models_dir/workloads/diffusion/<name>-<precision>/`` through a staging folder that is renamed
into place, so a cache entry is complete or absent.

Timings do not depend on the weight values: every denoising step runs the same convolutions and attention
on the same latent shape, whatever the numbers are; the image is noise.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from assistant.config import PROJECT_ROOT
from assistant.errors import ToolArgumentError, ToolExecutionError
from assistant.tools.build_cache import build_into_cache

DIFFUSION_PRECISIONS = ("int8", "int4", "fp16")
DEFAULT_DIFFUSION_PRECISION = "int8"
SEED = 2024
RANDOM_WEIGHTS_NOTE = ("weights are random (built from the published architecture): the timing holds because "
                       "every denoising step runs the same convolutions and attention on the same latent shape "
                       "whatever the weight values are; the image is noise. The CLIP tokenizer is synthesized "
                       "(byte-level vocabulary of the published size) and pads every prompt to the published "
                       "77 tokens; FLUX's T5 tokenizer is synthesized too (unigram vocabulary of the published "
                       "size) and its prompts run at the published 256 tokens")
_BYTES_PER_WEIGHT = {"fp16": (2.0, 2.0), "int8": (1.0, 1.0), "int4": (0.5 + 2 / 64, 1.0)}
"""(bytes per nn.Linear weight, bytes per other weight): INT4 is 4-bit in groups of 64 with an f16 scale for
the linear layers, 8-bit for convolutions and embeddings, as NNCF's INT4 weight compression does."""
_SPECIAL = ("<|startoftext|>", "<|endoftext|>")
_T5_SPECIAL = ("<pad>", "</s>", "<unk>")  # ids 0, 1, 2 as in T5's SentencePiece model
_IR = ("openvino_model.xml", "openvino_model.bin")
BUILT_ROLES = ("text_encoder", "text_encoder_2", "unet", "transformer", "vae_decoder")
"""The components this module can build: CLIP text encoder, T5 encoder, UNet, FLUX transformer, VAE decoder
(every component of both catalog pipelines)."""
HALF_BUILD_PIPELINES = ("FluxPipeline",)
"""Pipelines whose networks are made in FP16 and converted with 16-bit linear/embedding weights (the build's
peak memory is then about half an FP32 build's)."""
_TOKENIZER_CLASSES = {"clip": "CLIPTokenizer", "t5": "T5TokenizerFast"}


@dataclass(frozen=True)
class Component:
    """One network of a pipeline: its class, the published config values and its parameter counts."""

    role: str
    source: str
    library: str
    cls: str
    config: dict[str, Any]
    parameters: int
    linear_parameters: int
    attention_heads: int = 0
    attention_tokens: int = 0  # tokens of its largest self-attention at the pipeline's default size

    def weight_bytes(self, precision: str) -> int:
        """Bytes of this component's weights in `precision`."""
        linear, other = _BYTES_PER_WEIGHT[precision]
        return int(self.linear_parameters * linear + (self.parameters - self.linear_parameters) * other)


@dataclass(frozen=True)
class DiffusionArchitecture:
    """The published shape of a diffusion pipeline (see diffusion_architectures.json)."""

    name: str
    source: str
    pipeline_class: str
    tokens: int
    height: int
    width: int
    steps: int
    guidance_scale: float
    scheduler_source: str
    scheduler: dict[str, Any]
    components: dict[str, Component]
    tokenizers: dict[str, dict[str, Any]]
    tiny_size: bool = False

    def parameters(self) -> int:
        """All parameters of the pipeline's networks."""
        return sum(c.parameters for c in self.components.values())

    def weight_bytes(self, precision: str) -> int:
        """Bytes of all the pipeline's weights in `precision`."""
        return sum(c.weight_bytes(precision) for c in self.components.values())

    def batch(self) -> int:
        """Batch of the denoiser: 2 with classifier-free guidance (guidance_scale above 1), else 1."""
        return 2 if self.guidance_scale > 1 else 1

    def attention_bytes(self) -> int:
        """The largest attention score matrix of any component (f32 scores and softmax, denoiser batch)."""
        return max((2 * 4 * self.batch() * c.attention_heads * c.attention_tokens ** 2
                    for c in self.components.values()), default=0)

    def buildable(self) -> bool:
        """True when every component is one this module can build."""
        return set(self.components) <= set(BUILT_ROLES)

    def half_build(self) -> bool:
        """True when the build makes the networks in FP16 (see HALF_BUILD_PIPELINES)."""
        return self.pipeline_class in HALF_BUILD_PIPELINES

    def build_bytes_per_parameter(self) -> int:
        """Bytes a parameter takes while a component is built: 2 for an FP16 build, else 4."""
        return 2 if self.half_build() else 4

    def max_sequence_length(self) -> int | None:
        """The T5 prompt length the pipeline runs (FLUX's max_sequence_length), or None without a T5 encoder."""
        t5 = next((spec for spec in self.tokenizers.values() if spec.get("kind") == "t5"), None)
        return t5["model_max_length"] if t5 else None

    def tiny(self) -> DiffusionArchitecture:
        """The same pipeline at a test size: 1-2 blocks, 32-64 channels, 2 text layers, 64x64 images."""
        if not self.buildable():
            missing = ", ".join(sorted(set(self.components) - set(BUILT_ROLES)))
            raise ToolArgumentError(f"{self.name} has no tiny build: its {missing} have no builder")
        if "transformer" in self.components:
            return self._tiny_flux()
        text = self.components["text_encoder"]
        unet, vae = self.components["unet"], self.components["vae_decoder"]
        tiny_text = {**text.config, "vocab_size": 1000, "hidden_size": 32, "intermediate_size": 64,
                     "num_hidden_layers": 2, "num_attention_heads": 4, "projection_dim": 32}
        tiny_unet = {**unet.config, "block_out_channels": [32, 64], "layers_per_block": 1, "attention_head_dim": 4,
                     "cross_attention_dim": 32, "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
                     "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"], "sample_size": 32}
        tiny_vae = {**vae.config, "block_out_channels": [32, 64], "layers_per_block": 1, "sample_size": 64,
                    "down_block_types": vae.config["down_block_types"][:2],
                    "up_block_types": vae.config["up_block_types"][:2]}
        components = {"text_encoder": dataclasses.replace(text, config=tiny_text),
                      "unet": dataclasses.replace(unet, config=tiny_unet),
                      "vae_decoder": dataclasses.replace(vae, config=tiny_vae)}
        tokenizers = {role: {**spec, "vocab_size": 1000} for role, spec in self.tokenizers.items()}
        return dataclasses.replace(self, height=64, width=64, components=components, tokenizers=tokenizers,
                                   tiny_size=True)

    def _tiny_flux(self) -> DiffusionArchitecture:
        """FLUX at a test size: 1 double and 1 single block of 2 heads of 16, 2-layer CLIP and T5 of width 32,
        a 2-block VAE with the published 16 latent channels, 64x64 images; the prompt lengths stay published."""
        text, t5 = self.components["text_encoder"], self.components["text_encoder_2"]
        transformer, vae = self.components["transformer"], self.components["vae_decoder"]
        tiny_text = {**text.config, "vocab_size": 1000, "hidden_size": 32, "intermediate_size": 64,
                     "num_hidden_layers": 2, "num_attention_heads": 4, "projection_dim": 32}
        tiny_t5 = {**t5.config, "vocab_size": 1000, "d_model": 32, "d_kv": 8, "d_ff": 64, "num_layers": 2,
                   "num_heads": 4}
        tiny_transformer = {**transformer.config, "num_layers": 1, "num_single_layers": 1, "num_attention_heads": 2,
                            "attention_head_dim": 16, "axes_dims_rope": [4, 6, 6], "joint_attention_dim": 32,
                            "pooled_projection_dim": 32}
        tiny_vae = {**vae.config, "block_out_channels": [32, 64], "layers_per_block": 1, "sample_size": 64,
                    "down_block_types": vae.config["down_block_types"][:2],
                    "up_block_types": vae.config["up_block_types"][:2]}
        components = {"text_encoder": dataclasses.replace(text, config=tiny_text),
                      "text_encoder_2": dataclasses.replace(t5, config=tiny_t5),
                      "transformer": dataclasses.replace(transformer, config=tiny_transformer),
                      "vae_decoder": dataclasses.replace(vae, config=tiny_vae)}
        tokenizers = {role: {**spec, "vocab_size": 1000} for role, spec in self.tokenizers.items()}
        return dataclasses.replace(self, height=64, width=64, components=components, tokenizers=tokenizers,
                                   tiny_size=True)


@cache
def diffusion_architectures() -> dict[str, DiffusionArchitecture]:
    """Every catalog diffusion pipeline by catalog name, from the package data file."""
    text = resources.files("assistant").joinpath("data/diffusion_architectures.json").read_text(encoding="utf-8")
    models = json.loads(text)["models"]
    result = {}
    for name, spec in models.items():
        components = {}
        for role, part in spec["components"].items():
            attention = part.get("attention", {})
            components[role] = Component(role=role, source=part["source"], library=part["library"],
                                         cls=part["class"], config=part["config"], parameters=part["parameters"],
                                         linear_parameters=part["linear_parameters"],
                                         attention_heads=attention.get("heads", 0),
                                         attention_tokens=attention.get("largest_tokens", 0))
        result[name] = DiffusionArchitecture(
            name=name, source=spec["source"], pipeline_class=spec["pipeline_class"], tokens=spec["tokens"],
            height=spec["height"], width=spec["width"], steps=spec["steps"], guidance_scale=spec["guidance_scale"],
            scheduler_source=spec["scheduler"]["source"], scheduler=spec["scheduler"]["config"],
            components=components, tokenizers=spec["tokenizers"])
    return result


DIFFUSION_WORKLOADS: tuple[str, ...] = tuple(diffusion_architectures())
"""Catalog diffusion pipelines benchmark_diffusion knows (the schema's `model` names)."""


def is_diffusion_workload(name: str) -> bool:
    """True when `name` is a catalog diffusion pipeline (exact catalog name)."""
    return name in diffusion_architectures()


def diffusion_architecture(name: str) -> DiffusionArchitecture:
    """The architecture of a catalog diffusion pipeline, or ToolArgumentError listing the names."""
    try:
        return diffusion_architectures()[name]
    except KeyError:
        raise ToolArgumentError(f"{name!r} is not a catalog diffusion pipeline",
                                hint=f"Catalog diffusion pipelines: {', '.join(DIFFUSION_WORKLOADS)}") from None


def check_diffusion_precision(precision: str) -> str:
    """`precision` if a pipeline can be built in it, else ToolArgumentError."""
    if precision not in DIFFUSION_PRECISIONS:
        raise ToolArgumentError(f"diffusion precision must be one of {', '.join(DIFFUSION_PRECISIONS)}, "
                                f"not {precision!r}")
    return precision


# -- cache --------------------------------------------------------------------------------------------

def diffusion_dir(models_dir: Path, name: str, precision: str, *, tiny: bool = False) -> Path:
    """Cache folder of one built pipeline."""
    return Path(models_dir) / "workloads" / "diffusion" / f"{name}-{precision}{'-tiny' if tiny else ''}"


def cached_diffusion(models_dir: Path, name: str, precision: str, *, tiny: bool = False) -> Path | None:
    """The built pipeline folder, or None when it has not been built (or is incomplete)."""
    folder = diffusion_dir(models_dir, name, precision, tiny=tiny)
    arch = diffusion_architecture(name)
    files = ["model_index.json", "workload.json", "scheduler/scheduler_config.json",
             *(f"{role}/{file}" for role in arch.tokenizers
               for file in ("openvino_tokenizer.xml", "openvino_detokenizer.xml")),
             *(f"{role}/{file}" for role in arch.components for file in (*_IR, "config.json"))]
    return folder if all((folder / file).is_file() for file in files) else None


def ensure_diffusion_workload(name: str, precision: str, models_dir: Path, *, tiny: bool = False,
                              progress: Callable[[float, str], None] = lambda fraction, message: None) -> Path:
    """The cached pipeline folder of a catalog diffusion pipeline, building it on a miss (fit-check first)."""
    arch = diffusion_architecture(name)
    check_diffusion_precision(precision)
    if not arch.buildable():
        missing = ", ".join(sorted(set(arch.components) - set(BUILT_ROLES)))
        raise ToolExecutionError(f"{name} cannot be built here: its {missing} have no random-weight builder",
                                 hint=_NOT_BUILDABLE_HINT)
    if (hit := cached_diffusion(models_dir, name, precision, tiny=tiny)) is not None:
        return hit
    target = diffusion_dir(models_dir, name, precision, tiny=tiny)
    built = arch.tiny() if tiny else arch
    return build_into_cache(target, lambda staging: build_pipeline(built, precision, staging, progress=progress),
                            lambda: cached_diffusion(models_dir, name, precision, tiny=tiny),
                            what=f"{name} {precision}", kind="pipeline")


_NOT_BUILDABLE_HINT = (f"Buildable components: {', '.join(BUILT_ROLES)}. Export the real model with "
                       "`optimum-cli export openvino` instead.")


# -- build --------------------------------------------------------------------------------------------

def build_pipeline(arch: DiffusionArchitecture, precision: str, out_dir: Path, *,
                   progress: Callable[[float, str], None] = lambda fraction, message: None) -> Path:
    """Write the Text2ImagePipeline folder of `arch` into out_dir, one component at a time."""
    import openvino as ov

    started = time.perf_counter()
    out_dir = Path(out_dir)
    total = arch.parameters()
    # tokenizers first (2% of the progress), then each network by its share of the parameters
    steps = [(role, 0.02 / len(arch.tokenizers)) for role in arch.tokenizers]
    steps += [(role, 0.98 * c.parameters / total) for role, c in arch.components.items()]
    done = 0.0
    for role, share in steps:
        weights = "FP16" if arch.half_build() else "FP32"
        progress(done, f"building {arch.name} {role} ({precision}, random {weights} weights, seed {SEED})"
                 if role in arch.components else f"building {arch.name} {role} (synthesized vocabulary)")
        if role in arch.tokenizers:
            spec = arch.tokenizers[role]
            writer = write_t5_tokenizer if spec.get("kind") == "t5" else write_clip_tokenizer
            writer(out_dir / role, spec["vocab_size"], spec.get("model_max_length", arch.tokens))
        else:
            component = arch.components[role]
            model = _convert_component(component, arch)
            _save(model, out_dir / role, precision)
            del model
            config = {"_class_name": component.cls, **component.config}
            (out_dir / role / "config.json").write_text(json.dumps(config, indent=2))
        done += share
    (out_dir / "scheduler").mkdir()
    (out_dir / "scheduler" / "scheduler_config.json").write_text(json.dumps(arch.scheduler, indent=2))
    (out_dir / "model_index.json").write_text(json.dumps(model_index(arch), indent=2))
    meta = {"name": arch.name, "precision": precision, "tiny": arch.tiny_size, "seed": SEED,
            "note": RANDOM_WEIGHTS_NOTE, "source": arch.source,
            "components": {role: {"class": c.cls, "source": c.source, "parameters": c.parameters}
                           for role, c in arch.components.items()},
            "weight_compression": _COMPRESSION[precision], "build_dtype": "float16" if arch.half_build() else "float32",
            "openvino_version": ov.get_version(),
            "build_seconds": round(time.perf_counter() - started, 1)}
    (out_dir / "workload.json").write_text(json.dumps(meta, indent=2))
    progress(1.0, f"built {arch.name} {precision} in {meta['build_seconds']} s")
    return out_dir


_COMPRESSION = {"fp16": "FP16 IR (compress_to_fp16)",
                "int8": "NNCF compress_weights INT8_ASYM (8-bit weights, per output channel)",
                "int4": "NNCF compress_weights INT4_SYM group 64 for linear layers, INT8_ASYM for the rest"}


def model_index(arch: DiffusionArchitecture) -> dict[str, Any]:
    """The model_index.json of the pipeline folder (the classes a diffusers/optimum export names; the VAE
    decoder's folder is vae_decoder/, its entry `vae`)."""
    index: dict[str, Any] = {"_class_name": arch.pipeline_class, "_diffusers_version": _diffusers_version(),
                             "scheduler": ["diffusers", arch.scheduler["_class_name"]]}
    for role, spec in arch.tokenizers.items():
        index[role] = ["transformers", _TOKENIZER_CLASSES[spec.get("kind", "clip")]]
    for role, component in arch.components.items():
        index["vae" if role == "vae_decoder" else role] = [component.library, component.cls]
    return dict(sorted(index.items()))


def _diffusers_version() -> str:
    from importlib.metadata import version

    return version("diffusers")


def _convert_component(component: Component, arch: DiffusionArchitecture) -> Any:
    """The OpenVINO model of one component built with seeded random weights (dynamic batch and size)."""
    import warnings

    import openvino as ov
    import torch

    torch.manual_seed(SEED)
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float16 if arch.half_build() else torch.float32)
    try:  # an FP16 build makes the random weights in FP16: 2 bytes a parameter, never an FP32 copy
        module, example, shapes = _COMPONENT_BUILDERS[component.role](component, arch)
    finally:
        torch.set_default_dtype(default)
    example = {name: value.float() if value.is_floating_point() else value for name, value in example.items()}
    if arch.half_build():
        # as optimum-intel does for 16-bit models: linear and embedding weights stay 16-bit constants (decompressed
        # to f32 in the graph), the few other weights become f32; activations and inputs are f32
        from openvino.frontend.pytorch.patch_model import __make_16bit_traceable as make_16bit_traceable

        make_16bit_traceable(module)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer and deprecation warnings of convert_model's torch.jit.trace
        model = ov.convert_model(module, example_input=example, input=shapes)
    del module
    for port, (name, _) in zip(model.inputs, shapes, strict=True):
        port.get_tensor().set_names({name})  # the names openvino-genai sets tensors by, whatever tracing named
    return model


def _text_encoder(component: Component, arch: DiffusionArchitecture) -> tuple[Any, Any, Any]:
    import torch
    from transformers import CLIPTextConfig, CLIPTextModel

    module = CLIPTextModel(CLIPTextConfig(**component.config)).eval()
    tokens = component.config["max_position_embeddings"]
    example = {"input_ids": torch.randint(0, component.config["vocab_size"], (1, tokens))}
    return _wrap("text_encoder", module), example, [("input_ids", [-1, tokens])]


def _unet(component: Component, arch: DiffusionArchitecture) -> tuple[Any, Any, Any]:
    import torch
    from diffusers import UNet2DConditionModel

    config = component.config
    module = UNet2DConditionModel(**config).eval()
    latent = (arch.height // _vae_scale(arch), arch.width // _vae_scale(arch))
    text = arch.components["text_encoder"].config
    example = {"sample": torch.randn(arch.batch(), config["in_channels"], *latent),
               "timestep": torch.tensor([999], dtype=torch.int64),
               "encoder_hidden_states": torch.randn(arch.batch(), text["max_position_embeddings"],
                                                    config["cross_attention_dim"])}
    shapes = [("sample", [-1, config["in_channels"], -1, -1]), ("timestep", [-1]),
              ("encoder_hidden_states", [-1, -1, config["cross_attention_dim"]])]
    return _wrap("unet", module), example, shapes


def _t5_encoder(component: Component, arch: DiffusionArchitecture) -> tuple[Any, Any, Any]:
    import torch
    from transformers import T5Config, T5EncoderModel

    module = T5EncoderModel(T5Config(**component.config)).eval()
    tokens = arch.max_sequence_length() or arch.tokens
    example = {"input_ids": torch.randint(0, component.config["vocab_size"], (1, tokens))}
    return _wrap("text_encoder_2", module), example, [("input_ids", [-1, -1])]


_TRACE_SIDE = 256
"""Image side (pixels) the FLUX transformer is traced at; its inputs stay dynamic, so it runs any size."""


def _flux_transformer(component: Component, arch: DiffusionArchitecture) -> tuple[Any, Any, Any]:
    import torch
    from diffusers import FluxTransformer2DModel

    config = component.config
    module = FluxTransformer2DModel(**config).eval()
    side = min(arch.height, arch.width, _TRACE_SIDE) // _vae_scale(arch) // 2  # latents packed 2x2
    tokens = arch.max_sequence_length() or arch.tokens
    image_ids = torch.zeros(side, side, 3)
    image_ids[..., 1] = torch.arange(side)[:, None]
    image_ids[..., 2] = torch.arange(side)[None, :]
    example = {"hidden_states": torch.randn(1, side * side, config["in_channels"]),
               "encoder_hidden_states": torch.randn(1, tokens, config["joint_attention_dim"]),
               "pooled_projections": torch.randn(1, config["pooled_projection_dim"]),
               "timestep": torch.tensor([1.0]),
               "img_ids": image_ids.reshape(-1, 3), "txt_ids": torch.zeros(tokens, 3)}
    shapes = [("hidden_states", [-1, -1, config["in_channels"]]),
              ("encoder_hidden_states", [-1, -1, config["joint_attention_dim"]]),
              ("pooled_projections", [-1, config["pooled_projection_dim"]]), ("timestep", [-1]),
              ("img_ids", [-1, 3]), ("txt_ids", [-1, 3])]
    if config.get("guidance_embeds"):
        raise ToolExecutionError("a FLUX transformer with guidance embeddings (FLUX.1-dev) is not built here")
    return _wrap("transformer", module), example, shapes


def _vae_decoder(component: Component, arch: DiffusionArchitecture) -> tuple[Any, Any, Any]:
    import torch
    from diffusers import AutoencoderKL

    config = component.config
    vae = AutoencoderKL(**config).eval()
    del vae.encoder  # the text-to-image pipeline decodes only
    latent = (arch.height // _vae_scale(arch), arch.width // _vae_scale(arch))
    example = {"latent_sample": torch.randn(1, config["latent_channels"], *latent)}
    return _wrap("vae_decoder", vae), example, [("latent_sample", [-1, config["latent_channels"], -1, -1])]


def _vae_scale(arch: DiffusionArchitecture) -> int:
    return 2 ** (len(arch.components["vae_decoder"].config["block_out_channels"]) - 1)


_COMPONENT_BUILDERS: dict[str, Callable[[Component, DiffusionArchitecture], tuple[Any, Any, Any]]] = {
    "text_encoder": _text_encoder, "text_encoder_2": _t5_encoder, "unet": _unet, "transformer": _flux_transformer,
    "vae_decoder": _vae_decoder}


@cache
def _wrappers() -> dict[str, type]:
    """torch modules for tracing, with named inputs and plain tensor outputs (defined on first use, so
    importing this module does not import torch)."""
    import torch

    class TextEncoder(torch.nn.Module):
        def __init__(self, module: Any) -> None:
            super().__init__()
            self.module = module

        def forward(self, input_ids: Any) -> Any:
            return self.module(input_ids=input_ids, return_dict=False)

    class UNet(torch.nn.Module):
        def __init__(self, module: Any) -> None:
            super().__init__()
            self.module = module

        def forward(self, sample: Any, timestep: Any, encoder_hidden_states: Any) -> Any:
            return self.module(sample, timestep, encoder_hidden_states, return_dict=False)[0]

    class T5Encoder(torch.nn.Module):
        def __init__(self, module: Any) -> None:
            super().__init__()
            self.module = module

        def forward(self, input_ids: Any) -> Any:
            return self.module(input_ids=input_ids, return_dict=False)[0]

    class Transformer(torch.nn.Module):
        def __init__(self, module: Any) -> None:
            super().__init__()
            self.module = module

        def forward(self, hidden_states: Any, encoder_hidden_states: Any, pooled_projections: Any, timestep: Any,
                    img_ids: Any, txt_ids: Any) -> Any:
            return self.module(hidden_states=hidden_states, encoder_hidden_states=encoder_hidden_states,
                               pooled_projections=pooled_projections, timestep=timestep, img_ids=img_ids,
                               txt_ids=txt_ids, return_dict=False)[0]

    class Decoder(torch.nn.Module):
        def __init__(self, module: Any) -> None:
            super().__init__()
            self.module = module

        def forward(self, latent_sample: Any) -> Any:
            return self.module.decode(latent_sample, return_dict=False)[0]

    return {"text_encoder": TextEncoder, "text_encoder_2": T5Encoder, "unet": UNet, "transformer": Transformer,
            "vae_decoder": Decoder}


def _wrap(role: str, module: Any) -> Any:
    """`module` behind the tracing wrapper of `role`."""
    return _wrappers()[role](module)


def _save(model: Any, folder: Path, precision: str) -> None:
    """Compress the weights as `precision` says and write folder/openvino_model.xml/.bin."""
    import openvino as ov

    folder.mkdir(parents=True, exist_ok=True)
    if precision != "fp16":
        import nncf

        if precision == "int8":
            model = nncf.compress_weights(model, mode=nncf.CompressWeightsMode.INT8_ASYM)
        else:
            from nncf.quantization.advanced_parameters import AdvancedCompressionParameters, GroupSizeFallbackMode

            # a layer whose input width 64 does not divide (only in tiny builds: every published width does) gets
            # the largest power-of-two group that divides it instead of an error
            adjust = AdvancedCompressionParameters(group_size_fallback_mode=GroupSizeFallbackMode.ADJUST)
            model = nncf.compress_weights(model, mode=nncf.CompressWeightsMode.INT4_SYM, group_size=64, ratio=1.0,
                                          all_layers=False, advanced_parameters=adjust)
    ov.save_model(model, folder / "openvino_model.xml", compress_to_fp16=precision == "fp16")


# -- tokenizer ----------------------------------------------------------------------------------------

def clip_vocabulary(size: int) -> tuple[dict[str, int], list[str]]:
    """A CLIP-style byte-level BPE vocabulary of exactly `size` tokens (bytes, bytes ending a word, letter
    pairs with their merges, fillers, then <|startoftext|> <|endoftext|>) and its merges."""
    from assistant.tools.llm_workloads import _bytes_to_unicode

    if size < 512 + len(_SPECIAL):
        raise ValueError(f"a CLIP vocabulary needs at least {512 + len(_SPECIAL)} tokens, not {size}")
    chars = _bytes_to_unicode()
    tokens = chars + [f"{c}</w>" for c in chars]
    letters = "abcdefghijklmnopqrstuvwxyz"
    room = size - len(tokens) - len(_SPECIAL)
    merges = [f"{x} {y}{end}" for end in ("</w>", "") for x in letters for y in letters][:room]
    tokens += [merge.replace(" ", "") for merge in merges]
    tokens += [f"x{index}" for index in range(size - len(tokens) - len(_SPECIAL))]  # never produced: filler
    tokens += list(_SPECIAL)
    return {token: index for index, token in enumerate(tokens)}, merges


def write_clip_tokenizer(folder: Path, vocab_size: int, max_length: int) -> None:
    """Write a synthesized CLIP tokenizer (HF files and the OpenVINO tokenizer/detokenizer IRs) to folder."""
    import openvino as ov
    from openvino_tokenizers import convert_tokenizer
    from transformers import CLIPTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    vocab, merges = clip_vocabulary(vocab_size)
    pairs = [tuple(merge.split(" ")) for merge in merges]
    tokenizer = CLIPTokenizerFast(vocab=vocab, merges=pairs, bos_token=_SPECIAL[0], eos_token=_SPECIAL[1],
                                  pad_token=_SPECIAL[1], unk_token=_SPECIAL[1], model_max_length=max_length)
    if len(tokenizer) != vocab_size:
        raise ToolExecutionError(f"the synthesized CLIP tokenizer has {len(tokenizer)} tokens, not {vocab_size}")
    tokenizer.save_pretrained(folder)
    ov_tokenizer, ov_detokenizer = convert_tokenizer(tokenizer, with_detokenizer=True)
    ov.save_model(ov_tokenizer, folder / "openvino_tokenizer.xml")
    ov.save_model(ov_detokenizer, folder / "openvino_detokenizer.xml")


def t5_vocabulary(size: int) -> list[tuple[str, float]]:
    """A T5-style unigram vocabulary of exactly `size` pieces with their log-probabilities: <pad> </s> <unk>
    (ids 0-2), the word-start marker, printable characters alone and starting a word, letter pairs starting a
    word and inside one, then fillers too unlikely ever to be picked."""
    import string

    chars = [c for c in string.printable if not c.isspace()]
    letters = string.ascii_lowercase
    pieces = [("\u2581", -2.0), *((f"\u2581{c}", -4.0) for c in chars), *((c, -5.0) for c in chars)]
    if size < len(_T5_SPECIAL) + len(pieces):
        raise ValueError(f"a T5 vocabulary needs at least {len(_T5_SPECIAL) + len(pieces)} pieces, not {size}")
    pairs = [(f"\u2581{x}{y}", -6.0) for x in letters for y in letters] + [(x + y, -7.0) for x in letters
                                                                             for y in letters]
    pieces += pairs[:size - len(_T5_SPECIAL) - len(pieces)]
    pieces += [(f"<filler_{index}>", -1000.0) for index in range(size - len(_T5_SPECIAL) - len(pieces))]
    return [(token, 0.0) for token in _T5_SPECIAL] + pieces


def write_t5_tokenizer(folder: Path, vocab_size: int, max_length: int) -> None:
    """Write a synthesized T5 tokenizer (HF files and the OpenVINO tokenizer/detokenizer IRs) to folder: a
    unigram vocabulary of `vocab_size` pieces, </s> after every prompt, prompts cut at `max_length` tokens
    (openvino-genai pads them with <pad> to the pipeline's max_sequence_length)."""
    import openvino as ov
    from openvino_tokenizers import convert_tokenizer
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import T5TokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    backend = Tokenizer(models.Unigram(t5_vocabulary(vocab_size), unk_id=_T5_SPECIAL.index("<unk>")))
    backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    backend.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
    backend.post_processor = processors.TemplateProcessing(single="$A </s>", pair="$A </s> $B </s>",
                                                           special_tokens=[("</s>", 1)])
    tokenizer = T5TokenizerFast(tokenizer_object=backend, eos_token="</s>", pad_token="<pad>", unk_token="<unk>",
                                extra_ids=0, model_max_length=max_length)
    if len(tokenizer) != vocab_size:
        raise ToolExecutionError(f"the synthesized T5 tokenizer has {len(tokenizer)} tokens, not {vocab_size}")
    tokenizer.save_pretrained(folder)
    ov_tokenizer, ov_detokenizer = convert_tokenizer(tokenizer, with_detokenizer=True, max_length=max_length,
                                                     truncation=True)
    ov.save_model(ov_tokenizer, folder / "openvino_tokenizer.xml")
    ov.save_model(ov_detokenizer, folder / "openvino_detokenizer.xml")


# -- building in a child process ----------------------------------------------------------------------

def ensure_diffusion_in_subprocess(name: str, precision: str, models_dir: Path, *, timeout_s: float = 3600,
                                   tiny: bool = False,
                                   progress: Callable[[float, str], None] = lambda fraction, message: None,
                                   cancel: Any = None) -> Path:
    """`ensure_diffusion_workload` in a child process: torch's FP32 build memory goes back to the system
    when it ends, and a cancel or time limit kills it (its staging folder is removed by the next build)."""
    diffusion_architecture(name)
    check_diffusion_precision(precision)
    if (hit := cached_diffusion(models_dir, name, precision, tiny=tiny)) is not None:
        return hit
    command = [sys.executable, "-m", "assistant.tools.diffusion_workloads", name, precision, "--models-dir",
               str(Path(models_dir).resolve()), *(["--tiny"] if tiny else [])]
    deadline = time.monotonic() + timeout_s
    with tempfile.TemporaryFile(mode="w+") as errors:
        from assistant.tools.benchmark import _die_with
        from assistant.tools.slot import held_fds

        # like benchmark_app: its own process group, killed with this process, holding the benchmark slot
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, text=True, cwd=PROJECT_ROOT,
                                 start_new_session=True, pass_fds=held_fds(), preexec_fn=_die_with(os.getpid()))
        reader = threading.Thread(target=_relay_progress, args=(child.stdout, progress), daemon=True)
        reader.start()
        try:
            while child.poll() is None:
                if (cancel is not None and cancel.is_set()) or time.monotonic() > deadline:
                    child.kill()
                time.sleep(0.2)
        finally:
            if child.poll() is None:
                child.kill()
            child.wait()
            reader.join(timeout=5)
        errors.seek(0)
        lines = [line for line in errors.read().splitlines() if line.strip()]
    if cancel is not None and cancel.is_set():
        raise ToolExecutionError(f"building {name} was cancelled")
    if time.monotonic() > deadline:
        raise ToolExecutionError(f"building {name} {precision} took longer than {timeout_s:.0f} s and was stopped")
    if child.returncode != 0:
        last = lines[-1][:300] if lines else f"exit code {child.returncode}"
        raise ToolExecutionError(f"building {name} {precision} failed: {last}",
                                 hint="Check free memory and disk (the fit check's estimate is in its message).")
    hit = cached_diffusion(models_dir, name, precision, tiny=tiny)
    if hit is None:
        raise ToolExecutionError(f"building {name} {precision} left no complete pipeline in {models_dir}")
    return hit


def _relay_progress(stream: Any, progress: Callable[[float, str], None]) -> None:
    """Pass the child's 'FRACTION MESSAGE' lines to `progress`; other lines are ignored."""
    for line in stream:
        fraction, _, message = line.strip().partition(" ")
        try:
            value = float(fraction)
        except ValueError:
            continue
        progress(value, message)


def main(argv: list[str] | None = None) -> int:
    """Command line: build (or find) one catalog diffusion pipeline; progress lines are 'FRACTION MESSAGE'."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=DIFFUSION_WORKLOADS)
    parser.add_argument("precision", choices=DIFFUSION_PRECISIONS)
    parser.add_argument("--models-dir", type=Path, required=True)
    parser.add_argument("--tiny", action="store_true", help="1-2 blocks, 32-64 channels, 64x64 images (tests)")
    args = parser.parse_args(argv)
    folder = ensure_diffusion_workload(args.name, args.precision, args.models_dir, tiny=args.tiny,
                                       progress=lambda fraction, message: print(f"{fraction:.3f} {message}",
                                                                                flush=True))
    print(f"1.000 pipeline: {folder}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

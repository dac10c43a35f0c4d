"""Catalog LLMs built offline from their published architecture, with random INT4/INT8 weights.

The architectures (layers, widths, heads, vocabulary ...) are in `assistant/data/llm_architectures.json`,
each with the config.json it comes from. A build writes a GGUF directly (random Q4_0/Q8_0 blocks, a
byte-level tokenizer synthesized at the model's vocabulary size), streaming, so no FP32 weights are ever
held; openvino_genai turns it into an OpenVINO IR folder (the form published benchmarks load), and the GGUF
is deleted. Builds go to ``models_dir/workloads/llm/<name>-<precision>/`` through a temporary folder that is
renamed into place, so a cache entry is complete or absent.

Timings do not depend on the weight values: every token streams the same weight bytes through the same
matrix multiplications, whatever the numbers are.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from assistant.config import PROJECT_ROOT
from assistant.errors import ToolArgumentError, ToolExecutionError
from assistant.gguf_writer import F32, Q4_0, Q8_0, TensorSpec, write_gguf
from assistant.tools.build_cache import build_into_cache

LLM_PRECISIONS = ("int4", "int8")
DEFAULT_LLM_PRECISION = "int4"
SEED = 2024
RANDOM_WEIGHTS_NOTE = ("weights are random (built from the published architecture): the timing holds because "
                       "each token streams the same weight bytes through the same matrix shapes whatever the "
                       "values are; the text generated is meaningless")
# INT4 as in OpenVINO's published INT4 exports (NNCF weight compression): 4-bit projections, the embedding
# and the LM head kept in 8 bits. GGUF Q4_0 is symmetric 4-bit in groups of 32 with an f16 scale per group.
_TYPES = {"int4": {"proj": Q4_0, "embed": Q8_0, "file_type": 2},
          "int8": {"proj": Q8_0, "embed": Q8_0, "file_type": 7}}
_SPECIAL = ("<|begin_of_text|>", "<|end_of_text|>")
_CHAT_TEMPLATE = ("{% for message in messages %}{{ message['role'] }}: {{ message['content'] }}\n{% endfor %}"
                  "{% if add_generation_prompt %}assistant: {% endif %}")


@dataclass(frozen=True)
class Architecture:
    """The published shape of one LLM (see llm_architectures.json for field meanings and sources)."""

    name: str
    source: str
    hf_architecture: str
    family: str  # the GGUF architecture the builder emits: llama or qwen2
    layers: int
    hidden_size: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate_size: int
    vocab_size: int
    max_positions: int
    rope_theta: float
    norm: str
    norm_eps: float
    activation: str
    qkv_bias: bool
    tied_embeddings: bool
    differences: tuple[str, ...] = ()

    def parameters(self) -> dict[str, int]:
        """Parameter counts: projections (per all layers), embedding, LM head (0 when tied), other."""
        q_out, kv_out = self.heads * self.head_dim, self.kv_heads * self.head_dim
        attention = self.hidden_size * (q_out + 2 * kv_out) + q_out * self.hidden_size
        mlp = 3 * self.hidden_size * self.intermediate_size
        bias = (q_out + 2 * kv_out) if self.qkv_bias else 0
        return {"projections": self.layers * (attention + mlp),
                "embedding": self.vocab_size * self.hidden_size,
                "lm_head": 0 if self.tied_embeddings else self.vocab_size * self.hidden_size,
                "other": self.layers * (2 * self.hidden_size + bias) + self.hidden_size}

    def weight_bytes(self, precision: str) -> int:
        """Bytes of the weights in `precision` (4-bit: 18 bytes per 32 values, 8-bit: 34 per 32)."""
        counts, types = self.parameters(), _TYPES[precision]
        per_value = {Q4_0: 18 / 32, Q8_0: 34 / 32}
        return int(counts["projections"] * per_value[types["proj"]]
                   + (counts["embedding"] + counts["lm_head"]) * per_value[types["embed"]] + 4 * counts["other"])

    def kv_cache_bytes(self, tokens: int, bytes_per_value: int = 2) -> int:
        """KV cache of `tokens` tokens (keys and values of every layer, f16/bf16 by default)."""
        return 2 * self.layers * self.kv_heads * self.head_dim * tokens * bytes_per_value

    def tiny(self) -> Architecture:
        """The same family, head size, GQA ratio, biases and tying at a test size (2 layers, ~1/8 width)."""
        ratio = self.heads // self.kv_heads
        kv = 1 if ratio > 1 else 2
        heads = kv * ratio
        hidden = _round32(self.hidden_size * heads / self.heads)
        return dataclasses.replace(self, layers=2, heads=heads, kv_heads=kv, hidden_size=hidden,
                                   intermediate_size=_round32(self.intermediate_size * hidden / self.hidden_size),
                                   vocab_size=1024, max_positions=min(self.max_positions, 4096))


def _round32(value: float) -> int:
    return max(32, round(value / 32) * 32)


@cache
def architectures() -> dict[str, Architecture]:
    """Every catalog LLM's architecture by catalog name, from the package data file."""
    text = resources.files("assistant").joinpath("data/llm_architectures.json").read_text(encoding="utf-8")
    models = json.loads(text)["models"]
    return {name: Architecture(name=name, **{**spec, "differences": tuple(spec.get("differences", ()))})
            for name, spec in models.items()}


LLM_WORKLOADS: tuple[str, ...] = tuple(architectures())
"""Catalog LLM names this module can build and benchmark_llm can measure (the schema's `model` names)."""


def is_llm_workload(name: str) -> bool:
    """True when `name` is a catalog LLM that can be built and measured offline (exact catalog name)."""
    return name in architectures()


def architecture(name: str) -> Architecture:
    """The architecture of a catalog LLM, or ToolArgumentError listing the names."""
    try:
        return architectures()[name]
    except KeyError:
        raise ToolArgumentError(f"{name!r} is not a catalog LLM",
                                hint=f"Catalog LLMs: {', '.join(LLM_WORKLOADS)}") from None


def check_precision(precision: str) -> str:
    """`precision` if an LLM can be built in it, else ToolArgumentError."""
    if precision not in LLM_PRECISIONS:
        raise ToolArgumentError(f"LLM precision must be one of {', '.join(LLM_PRECISIONS)}, not {precision!r}")
    return precision


# -- cache --------------------------------------------------------------------------------------------

def llm_workload_dir(models_dir: Path, name: str, precision: str, *, tiny: bool = False) -> Path:
    """Cache folder of one built catalog LLM."""
    return Path(models_dir) / "workloads" / "llm" / f"{name}-{precision}{'-tiny' if tiny else ''}"


def cached_llm(models_dir: Path, name: str, precision: str, *, tiny: bool = False) -> Path | None:
    """The built IR folder, or None when it has not been built (or is incomplete)."""
    folder = llm_workload_dir(models_dir, name, precision, tiny=tiny)
    complete = all((folder / file).is_file() for file in (*_IR_FILES, "workload.json"))
    return folder if complete else None


def ensure_llm_workload(name: str, precision: str, models_dir: Path, *, tiny: bool = False,
                        progress: Callable[[float, str], None] = lambda fraction, message: None) -> Path:
    """The cached IR folder of a catalog LLM, building it first on a miss (call the fit check before)."""
    arch = architecture(name)
    check_precision(precision)
    if (hit := cached_llm(models_dir, name, precision, tiny=tiny)) is not None:
        return hit
    target = llm_workload_dir(models_dir, name, precision, tiny=tiny)
    built = arch.tiny() if tiny else arch
    return build_into_cache(target, lambda staging: build_llm(built, precision, staging, progress=progress),
                            lambda: cached_llm(models_dir, name, precision, tiny=tiny),
                            what=f"{name} {precision}", kind="IR")


# -- build --------------------------------------------------------------------------------------------

def build_llm(arch: Architecture, precision: str, out_dir: Path, *,
              progress: Callable[[float, str], None] = lambda fraction, message: None) -> Path:
    """Write the GGUF of `arch` into out_dir, convert it to an OpenVINO IR there, delete the GGUF."""
    import openvino_genai

    started = time.perf_counter()
    gguf = Path(out_dir) / "model.gguf"
    size_gb = arch.weight_bytes(precision) / 1e9
    progress(0.0, f"writing {arch.name} {precision} with random weights (~{size_gb:.1f} GB)")
    write_gguf(gguf, gguf_metadata(arch, precision), gguf_tensors(arch, precision), seed=SEED,
               progress=lambda fraction: progress(0.5 * fraction, f"writing {arch.name} GGUF"))
    progress(0.5, f"converting {arch.name} to OpenVINO IR with openvino_genai")
    gguf_to_ir(gguf)
    gguf.unlink()
    meta = {"name": arch.name, "precision": precision, "family": arch.family, "source": arch.source,
            "layers": arch.layers, "hidden_size": arch.hidden_size, "vocab_size": arch.vocab_size,
            "seed": SEED, "note": RANDOM_WEIGHTS_NOTE, "differences": list(arch.differences),
            "weight_types": {"projections": "Q4_0" if _TYPES[precision]["proj"] == Q4_0 else "Q8_0",
                             "embedding_and_lm_head": "Q8_0"},
            "openvino_genai_version": openvino_genai.get_version(),
            "build_seconds": round(time.perf_counter() - started, 1)}
    (Path(out_dir) / "workload.json").write_text(json.dumps(meta, indent=2))
    progress(1.0, f"built {arch.name} {precision} in {meta['build_seconds']} s")
    return Path(out_dir)


# openvino_genai's GGUF reader saves the IR (enable_save_ov_model) as soon as it has built the graph, before
# it compiles it for a device. Asking for a device that does not exist stops it there, which saves the CPU
# compile of a model nobody runs in this process (1.5B: 31 s instead of 35 s; the peak memory, 3.2x the
# weights, is the reader's and stays). When a future reader checks the device first, CPU is used instead.
_NO_DEVICE = "OVPERF_SAVE_ONLY"
_IR_FILES = ("openvino_model.xml", "openvino_model.bin", "openvino_tokenizer.xml", "openvino_detokenizer.xml")


def gguf_to_ir(gguf: Path) -> Path:
    """Convert a GGUF to openvino_model.xml + tokenizer/detokenizer IRs next to it."""
    import openvino_genai

    folder = gguf.parent
    openvino_genai.Tokenizer(str(gguf), enable_save_ov_model=True)
    for device in (_NO_DEVICE, "CPU"):
        try:
            openvino_genai.LLMPipeline(str(gguf), device, enable_save_ov_model=True)
        except RuntimeError as exc:
            if device == _NO_DEVICE and _NO_DEVICE in str(exc):
                if (folder / "openvino_model.xml").is_file():
                    break
                continue
            lines = [line for line in str(exc).splitlines() if line.strip()]
            raise ToolExecutionError(f"openvino_genai cannot convert {gguf.name}: "
                                     f"{lines[-1][:300] if lines else type(exc).__name__}") from None
        else:
            break
    missing = [name for name in _IR_FILES if not (folder / name).is_file()]
    if missing:
        raise ToolExecutionError(f"openvino_genai converted {gguf.name} but wrote no {', '.join(missing)}")
    return folder / "openvino_model.xml"


def gguf_metadata(arch: Architecture, precision: str) -> dict[str, Any]:
    """GGUF metadata of `arch`: hyperparameters under its family and a synthesized byte-level tokenizer."""
    a = arch.family
    tokens, types, merges = synthetic_vocabulary(arch.vocab_size)
    return {
        "general.architecture": a, "general.name": f"{arch.name} (random weights)",
        "general.file_type": _TYPES[precision]["file_type"], "general.alignment": 32,
        f"{a}.block_count": arch.layers, f"{a}.context_length": arch.max_positions,
        f"{a}.embedding_length": arch.hidden_size, f"{a}.feed_forward_length": arch.intermediate_size,
        f"{a}.attention.head_count": arch.heads, f"{a}.attention.head_count_kv": arch.kv_heads,
        f"{a}.attention.key_length": arch.head_dim, f"{a}.attention.value_length": arch.head_dim,
        f"{a}.attention.layer_norm_rms_epsilon": float(arch.norm_eps), f"{a}.rope.freq_base": float(arch.rope_theta),
        f"{a}.rope.dimension_count": arch.head_dim, f"{a}.vocab_size": arch.vocab_size,
        "tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": "qwen2" if a == "qwen2" else "default",
        "tokenizer.ggml.tokens": tokens, "tokenizer.ggml.token_type": types, "tokenizer.ggml.merges": merges,
        "tokenizer.ggml.bos_token_id": arch.vocab_size - 2, "tokenizer.ggml.eos_token_id": arch.vocab_size - 1,
        "tokenizer.chat_template": _CHAT_TEMPLATE,
    }


def synthetic_vocabulary(size: int) -> tuple[list[str], list[int], list[str]]:
    """A GPT-2 style byte-level vocabulary of exactly `size` tokens: 256 bytes, letter pairs (with their
    merges), filler tokens, and begin/end special tokens last."""
    byte_chars = _bytes_to_unicode()
    letters = "abcdefghijklmnopqrstuvwxyz"
    tokens = list(byte_chars)
    pairs = [x + y for x in letters for y in letters][:max(0, size - 256 - len(_SPECIAL))]
    tokens += pairs
    merges = [f"{pair[0]} {pair[1]}" for pair in pairs]
    tokens += [f"x{index}" for index in range(size - len(tokens) - len(_SPECIAL))]
    tokens += list(_SPECIAL)
    types = [1] * (size - len(_SPECIAL)) + [3] * len(_SPECIAL)  # 1 normal, 3 control
    if len(tokens) != size:
        raise ValueError(f"a vocabulary needs at least {256 + len(_SPECIAL)} tokens, not {size}")
    return tokens, types, merges


def _bytes_to_unicode() -> list[str]:
    """GPT-2's printable stand-in character for each byte value 0-255, in byte order."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    mapping, extra = {}, 0
    for byte in range(256):
        if byte in printable:
            mapping[byte] = chr(byte)
        else:
            mapping[byte] = chr(256 + extra)
            extra += 1
    return [mapping[byte] for byte in range(256)]


def gguf_tensors(arch: Architecture, precision: str) -> list[TensorSpec]:
    """The tensors of `arch` in llama.cpp naming, dims innermost first, in the precision's ggml types."""
    proj, embed = _TYPES[precision]["proj"], _TYPES[precision]["embed"]
    h, q_out, kv_out = arch.hidden_size, arch.heads * arch.head_dim, arch.kv_heads * arch.head_dim
    tensors = [TensorSpec("token_embd.weight", (h, arch.vocab_size), embed)]
    for i in range(arch.layers):
        b = f"blk.{i}"
        tensors += [TensorSpec(f"{b}.attn_norm.weight", (h,), F32, 1.0),
                    TensorSpec(f"{b}.attn_q.weight", (h, q_out), proj),
                    TensorSpec(f"{b}.attn_k.weight", (h, kv_out), proj),
                    TensorSpec(f"{b}.attn_v.weight", (h, kv_out), proj)]
        if arch.qkv_bias:
            tensors += [TensorSpec(f"{b}.attn_q.bias", (q_out,), F32), TensorSpec(f"{b}.attn_k.bias", (kv_out,), F32),
                        TensorSpec(f"{b}.attn_v.bias", (kv_out,), F32)]
        tensors += [TensorSpec(f"{b}.attn_output.weight", (q_out, h), proj),
                    TensorSpec(f"{b}.ffn_norm.weight", (h,), F32, 1.0),
                    TensorSpec(f"{b}.ffn_gate.weight", (h, arch.intermediate_size), proj),
                    TensorSpec(f"{b}.ffn_up.weight", (h, arch.intermediate_size), proj),
                    TensorSpec(f"{b}.ffn_down.weight", (arch.intermediate_size, h), proj)]
    tensors.append(TensorSpec("output_norm.weight", (h,), F32, 1.0))
    if not arch.tied_embeddings:
        tensors.append(TensorSpec("output.weight", (h, arch.vocab_size), embed))
    return tensors


# -- building in a child process ----------------------------------------------------------------------

def ensure_llm_workload_in_subprocess(name: str, precision: str, models_dir: Path, *, timeout_s: float = 3600,
                                      progress: Callable[[float, str], None] = lambda fraction, message: None,
                                      cancel: Any = None) -> Path:
    """`ensure_llm_workload` in a child process: the reader's memory goes back to the system when it ends,
    and a cancel or time limit kills it (the staging folder it leaves is removed by the next build)."""
    import subprocess
    import sys
    import threading

    architecture(name)
    check_precision(precision)
    if (hit := cached_llm(models_dir, name, precision)) is not None:
        return hit
    command = [sys.executable, "-m", "assistant.tools.llm_workloads", name, precision, "--models-dir",
               str(Path(models_dir).resolve())]
    deadline = time.monotonic() + timeout_s
    with tempfile.TemporaryFile(mode="w+") as errors:
        # from the project root, so the child imports this same package
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, text=True, cwd=PROJECT_ROOT)
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
    hit = cached_llm(models_dir, name, precision)
    if hit is None:
        raise ToolExecutionError(f"building {name} {precision} left no complete IR in {models_dir}")
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
    """Command line: build (or find) one catalog LLM; progress lines are 'FRACTION MESSAGE'."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=LLM_WORKLOADS)
    parser.add_argument("precision", choices=LLM_PRECISIONS)
    parser.add_argument("--models-dir", type=Path, required=True)
    parser.add_argument("--tiny", action="store_true", help="2 layers, ~1/8 width (tests)")
    args = parser.parse_args(argv)
    folder = ensure_llm_workload(args.name, args.precision, args.models_dir, tiny=args.tiny,
                                 progress=lambda fraction, message: print(f"{fraction:.3f} {message}", flush=True))
    print(f"1.000 IR: {folder}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

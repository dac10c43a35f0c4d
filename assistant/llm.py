"""Text generation: the `LLM` protocol, the local OpenVINO backend and an OpenAI-compatible remote backend."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from assistant.config import Settings
from assistant.errors import DeviceNotAvailable, ModelError

OnToken = Callable[[str], None]
log = logging.getLogger(__name__)

# Measured on the default model (SmolLM2-135M Q4_1 GGUF), 2-core Xeon with AMX, assistant-like prompts
# (320 tokens sharing a 256-token prefix, 32 new tokens), medians of 8 interleaved runs:
#   default (PagedAttention + prefix cache, bf16)  ttft 102 ms, 34.1 ms/token, total 1151 ms
#   INFERENCE_PRECISION_HINT=f32                   ttft 103 ms, 22.4 ms/token, total  795 ms
#   ATTENTION_BACKEND=SDPA (no prefix cache)       ttft 384 ms (vs 130 ms default in the same run)
#   KV_CACHE_PRECISION u8 / f32                    no measurable difference
# So GGUF models keep the default backend (its prefix cache reuses the shared system prompt) with f32
# precision. IR folders (other, larger models) keep the plugin defaults: bf16 may win there.
# Re-measured with `python -m benchmarks.llm_compare` (600-token RAG prompt, 128 tokens, EOS ignored,
# interleaved rounds, time per output token of plain decoding relative to this configuration):
#   ATTENTION_BACKEND=SDPA           0.91-0.96x per token, but 1.3-2.1x time to first token and no
#                                    prefix cache or prompt lookup (both need PagedAttention): not used
#   KV_CACHE_PRECISION f16 / f32     0.95 / 0.97x (within noise); DYNAMIC_QUANTIZATION_GROUP_SIZE 0: 1.19x
#   INFERENCE_NUM_THREADS=1          1.33x on a quiet machine (better only while another process holds a
#                                    core); ENABLE_CPU_PINNING=False: no gain. Plugin defaults kept.
GGUF_PROPERTIES: dict[str, Any] = {"INFERENCE_PRECISION_HINT": "f32", "prompt_lookup": True}
# Prompt lookup decoding (openvino_genai's `prompt_lookup` pipeline property): n-grams of the prompt are
# proposed as draft tokens and verified in one pass, so greedy output stays the same (answers to the 10
# dev FAQ questions and 2 others: 12/12 identical). The FAQ prompt asks the model to copy a sentence of
# the source, which is where it pays off. Measured: time per output token 0.58x of plain decoding on
# the benchmark prompt (suite run, 5 interleaved rounds; per-round paired median 0.61x; it varies with the
# text: 0.45-0.9x),
# +7% time to first token; FAQ answer generation 0.70x (median over the dev FAQ questions, 2 passes).
# 5 draft tokens / 3-grams beat 3/2 and 8/2 on the answers. Pass properties={"prompt_lookup": False, ...}
# for plain decoding (a prompt-lookup pipeline rejects requests without these two settings).
PROMPT_LOOKUP = {"num_assistant_tokens": 5, "max_ngram_size": 3}


@dataclass(frozen=True, kw_only=True)
class Generation:
    """One completed generation with its timings."""

    text: str
    input_tokens: int
    output_tokens: int
    first_token_ms: float
    total_ms: float
    tokens_per_s: float  # decode speed: output tokens per second after the first token


@runtime_checkable
class LLM(Protocol):
    """Anything that turns chat messages into text."""

    name: str

    def generate(self, messages: list[dict[str, str]], *, max_new_tokens: int,
                 on_token: OnToken | None = None, json_schema: dict | None = None,
                 stop: list[str] | None = None) -> Generation:
        """Generate a reply to `messages`, streaming text pieces to `on_token`."""
        ...


# -- devices ------------------------------------------------------------------------------------------

def available_devices() -> list[str]:
    """OpenVINO devices present on this machine (e.g. ["CPU", "GPU"])."""
    import openvino as ov

    return list(ov.Core().available_devices)


def check_device(device: str, available: Iterable[str] | None = None) -> str:
    """Return `device` if OpenVINO can use it here; AUTO is always allowed; else DeviceNotAvailable."""
    present = list(available) if available is not None else available_devices()
    name = device.strip().upper()
    prefix, _, targets = name.partition(":")
    if prefix in {"AUTO", "HETERO", "MULTI"}:
        wanted = [t.strip() for t in targets.split(",") if t.strip()]
        if prefix == "AUTO" and not wanted:
            return name
    else:
        wanted = [name]
    for one in wanted:
        if not any(one == have or have.split(".")[0] == one for have in present):
            raise DeviceNotAvailable(
                f"device {one} is not available on this machine",
                hint=f"Available devices: {', '.join([*present, 'AUTO'])}. Use --device with one of them.",
            )
    return name


# -- local OpenVINO backend ---------------------------------------------------------------------------

class OpenVINOLLM:
    """openvino_genai.LLMPipeline over a GGUF file or an OpenVINO IR folder; greedy decoding."""

    def __init__(self, path: Path, *, device: str = "CPU", cache_dir: Path | None = None,
                 properties: dict[str, Any] | None = None) -> None:
        self.path = Path(path)
        self.device = check_device(device)
        self.name = self.path.stem if self.path.is_file() else self.path.name
        is_gguf = self.path.suffix.lower() == ".gguf"
        self.properties = dict((GGUF_PROPERTIES if is_gguf else {}) if properties is None else properties)
        self.prompt_lookup = bool(self.properties.get("prompt_lookup"))
        start = time.perf_counter()
        try:
            if is_gguf and cache_dir is not None:
                self.pipeline = _load_gguf_cached(self.path, self.device, self.properties, cache_dir)
            elif is_gguf:  # same weights as with a cache (see _exact_q4_1), built in a throwaway folder
                with tempfile.TemporaryDirectory(prefix="ovperf-gguf-") as tmp:
                    self.pipeline = _load_gguf_cached(self.path, self.device, self.properties, Path(tmp),
                                                      compile_cache=False)
            else:
                self.pipeline = _load(self.path, self.device, self.properties, cache_dir)
        except RuntimeError as exc:
            raise ModelError(f"OpenVINO cannot load {self.path} on {self.device}: {_first_line(exc)}",
                             hint="Check that it is a supported GGUF (llama/qwen2/qwen3, Q4_0/Q4_1/Q8_0/F16) "
                                  "or an IR folder exported with: ovperf models convert") from None
        self.load_ms = (time.perf_counter() - start) * 1000
        self.tokenizer = self.pipeline.get_tokenizer()
        self.lock = threading.Lock()  # one generation at a time: the pipeline keeps per-request state

    def __repr__(self) -> str:
        return f"OpenVINOLLM({str(self.path)!r}, device={self.device!r})"

    def prompt(self, messages: list[dict[str, str]]) -> str:
        """The model's chat template applied to `messages`, ready for the assistant's reply."""
        return self.tokenizer.apply_chat_template(messages, add_generation_prompt=True)

    def tokenize(self, text: str) -> list[int]:
        """Token ids of `text` without special tokens."""
        return self.tokenizer.encode(text, add_special_tokens=False).input_ids.data[0].tolist()

    def generation_config(self, max_new_tokens: int) -> Any:
        """A greedy openvino_genai.GenerationConfig for this model."""
        config = self.pipeline.get_generation_config()
        config.max_new_tokens = max_new_tokens
        config.do_sample = False
        config.apply_chat_template = False  # the prompt is already templated
        if self.prompt_lookup:  # a prompt-lookup pipeline requires both on every request
            config.num_assistant_tokens = PROMPT_LOOKUP["num_assistant_tokens"]
            config.max_ngram_size = PROMPT_LOOKUP["max_ngram_size"]
        return config

    def generate(self, messages: list[dict[str, str]], *, max_new_tokens: int,
                 on_token: OnToken | None = None, json_schema: dict | None = None,
                 stop: list[str] | None = None) -> Generation:
        """Greedy generation over the chat-templated messages, optionally JSON-schema constrained."""
        import openvino_genai

        config = self.generation_config(max_new_tokens)
        if stop:
            config.stop_strings = set(stop)
            config.include_stop_str_in_output = False
        if json_schema is not None:
            schema = json.dumps(json_schema)
            config.structured_output_config = openvino_genai.StructuredOutputConfig(json_schema=schema)
        prompt = self.prompt(messages)
        streamer = _Streamer(self.tokenizer, on_token) if on_token else None
        with self.lock:
            start = time.perf_counter()
            try:
                result = self.pipeline.generate([prompt], config, streamer.streamer if streamer else None)
            except RuntimeError as exc:
                raise ModelError(f"generation failed: {_first_line(exc)}",
                                 hint="Shorten the conversation or lower max_new_tokens.") from None
            total_ms = (time.perf_counter() - start) * 1000
        if streamer:
            streamer.reraise()
        metrics = result.perf_metrics
        output_tokens = int(metrics.get_num_generated_tokens())
        return Generation(text=result.texts[0], input_tokens=int(metrics.get_num_input_tokens()),
                          output_tokens=output_tokens, first_token_ms=_finite(metrics.get_ttft().mean),
                          total_ms=total_ms, tokens_per_s=decode_rate(metrics.get_tpot().mean, output_tokens))


def _load(path: Path, device: str, properties: dict[str, Any], cache_dir: Path | None) -> Any:
    import openvino_genai

    props = dict(properties)
    if cache_dir is not None and path.is_dir():  # compiled-blob cache for IR models
        cache_dir.mkdir(parents=True, exist_ok=True)
        props["CACHE_DIR"] = str(cache_dir)
    return openvino_genai.LLMPipeline(str(path), device, **props)


def _load_gguf_cached(gguf: Path, device: str, properties: dict[str, Any], cache_dir: Path, *,
                      compile_cache: bool = True) -> Any:
    """Load a GGUF through the IR openvino_genai built from it on a previous start (about 40% faster).

    The first start loads the GGUF with `enable_save_ov_model` from a scratch folder that links to it, so
    the IR lands in the cache, keyed by the file's size, mtime, the openvino_genai version and
    GGUF_IR_FORMAT. Its Q4_1 weights are then made exact (`_exact_q4_1`) and the pipeline is loaded from it.
    """
    import openvino_genai

    stat = gguf.stat()
    version = re.sub(r"[^\w.-]", "_", openvino_genai.get_version())
    key = f"{gguf.stem}-{stat.st_size}-{stat.st_mtime_ns}-{version}-{GGUF_IR_FORMAT}"
    ir_dir = cache_dir / "gguf-ir" / key
    blob_cache = cache_dir if compile_cache else None
    if (ir_dir / "openvino_model.xml").is_file() and (ir_dir / "openvino_tokenizer.xml").is_file():
        try:
            return _load(ir_dir, device, properties, blob_cache)
        except RuntimeError:
            shutil.rmtree(ir_dir, ignore_errors=True)  # stale or damaged: rebuild from the GGUF below
    scratch = ir_dir.with_name(f".{ir_dir.name}.{uuid.uuid4().hex[:8]}")
    try:
        scratch.mkdir(parents=True)
        (scratch / gguf.name).symlink_to(gguf.resolve())
    except OSError:  # no symlinks or read-only cache: plain GGUF load
        shutil.rmtree(scratch, ignore_errors=True)
        return _load(gguf, device, properties, None)
    try:
        pipeline = _load(scratch / gguf.name, device, {**properties, "enable_save_ov_model": True}, None)
        (scratch / gguf.name).unlink()
        if not (scratch / "openvino_model.xml").is_file():
            return pipeline
        if _exact_q4_1(scratch / "openvino_model.xml", gguf):
            pipeline = None  # built from the approximate weights: load the rewritten IR instead
        if not ir_dir.exists():
            with contextlib.suppress(OSError):  # another process may have won the race
                os.replace(scratch, ir_dir)
        if pipeline is None:
            built = ir_dir if (ir_dir / "openvino_model.xml").is_file() else scratch
            pipeline = _load(built, device, properties, blob_cache)
        return pipeline
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


# -- exact Q4_1 weights -------------------------------------------------------------------------------
# openvino_genai's GGUF reader stores a Q4_1 block (x = d*q + m, q in 0..15, d and m f16 per 32 weights)
# as u4 q with a *u4 integer* zero point round(-m/d): every weight is off by up to d/2, as much as the
# 4-bit quantization error itself. llama.cpp and transformers compute d*q + m exactly (they agree with
# each other token for token; the stock IR left them at the 3rd generated token of the benchmark prompt,
# the rewritten one follows them for 14+). The IR is rewritten once, when it is cached: x = (d/16) *
# (q8 - z8) with u8 q8 = 16q + c and u8 zero point z8, error <= d/32 (an exact f16 zero point instead
# costs 1.55x time to first token). Perplexity on the FAQ text (1,335 tokens): stock IR 35.17, rewritten
# 28.01 (exact f32 weights: 27.84), with the int8 LM head below 28.10. The cost is decode speed: plain
# decoding 1.23-1.29x time per token of the stock IR, 1.14x with the int8 LM head (paired medians of 6
# interleaved rounds); prompt lookup more than pays it back.
GGUF_IR_FORMAT = "q41u8-lmi8"  # part of the IR cache key: change it when the rewrite changes
_GGUF_Q4_1 = 3
_GGUF_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q",
                 12: "<d"}


def _gguf_tensors(path: Path) -> tuple[Any, list[tuple[str, int, tuple[int, ...], int]]]:
    """The file (memory-mapped) and its tensor table: (name, ggml type, dims, absolute offset)."""
    import struct

    import numpy as np

    data = np.memmap(path, dtype=np.uint8, mode="r")
    pos = 0

    def read(fmt: str) -> Any:
        nonlocal pos
        value = struct.unpack_from(fmt, data, pos)[0]
        pos += struct.calcsize(fmt)
        return value

    def read_str() -> str:
        nonlocal pos
        size = read("<Q")
        text = bytes(data[pos:pos + size]).decode("utf-8", errors="replace")
        pos += size
        return text

    def read_value(kind: int) -> Any:
        if kind in _GGUF_SCALARS:
            return read(_GGUF_SCALARS[kind])
        if kind == 8:
            return read_str()
        if kind == 9:
            item, count = read("<I"), read("<Q")
            return [read_value(item) for _ in range(count)]
        raise ValueError(f"unknown GGUF value type {kind}")

    if bytes(data[:4]) != b"GGUF":
        raise ValueError("not a GGUF file")
    pos = 4
    version, n_tensors, n_kv = read("<I"), read("<Q"), read("<Q")
    if version < 2:
        raise ValueError(f"GGUF version {version} is not supported")
    metadata = {}
    for _ in range(n_kv):
        key = read_str()
        metadata[key] = read_value(read("<I"))
    infos = []
    for _ in range(n_tensors):
        name = read_str()
        dims = tuple(read("<Q") for _ in range(read("<I")))
        infos.append((name, read("<I"), dims, read("<Q")))
    alignment = int(metadata.get("general.alignment", 32))
    start = (pos + alignment - 1) // alignment * alignment
    return data, [(name, kind, dims, start + offset) for name, kind, dims, offset in infos]


def _row_key(scales: Any, values: Any) -> bytes:
    return hashlib.blake2b(scales.tobytes() + values.tobytes(), digest_size=16).digest()


def _gguf_q4_1_rows(path: Path) -> dict[bytes, tuple[Any, Any]]:
    """Every Q4_1 row of the GGUF, keyed by its scales and 4-bit values: its d and m (f16 per 32)."""
    import numpy as np

    data, tensors = _gguf_tensors(path)
    rows: dict[bytes, tuple[Any, Any]] = {}
    for _name, kind, dims, offset in tensors:
        if kind != _GGUF_Q4_1 or dims[0] % 32:
            continue
        n_rows = int(np.prod(dims[1:], dtype=np.int64))
        blocks = np.asarray(data[offset:offset + n_rows * dims[0] // 32 * 20]).reshape(n_rows, -1, 20)
        d = np.ascontiguousarray(blocks[:, :, 0:2]).view(np.float16)[..., 0]
        m = np.ascontiguousarray(blocks[:, :, 2:4]).view(np.float16)[..., 0]
        nibbles = blocks[:, :, 4:]
        q = np.concatenate([nibbles & 0x0F, nibbles >> 4], axis=2)  # low nibbles hold values 0-15
        for r in range(n_rows):
            rows[_row_key(d[r], q[r])] = (d[r], m[r])
    return rows


def _u4_values(node: Any) -> Any:
    """The values of a u4 Constant (two per byte, low nibble first) in its shape."""
    import numpy as np

    shape = tuple(node.get_output_shape(0))
    packed = np.frombuffer(node.get_data().tobytes(), dtype=np.uint8)
    values = np.empty(packed.size * 2, dtype=np.uint8)
    values[0::2], values[1::2] = packed & 0x0F, packed >> 4
    return values[: int(np.prod(shape))].reshape(shape)


def _lm_head_int8(model: Any) -> None:
    """The LM head (tied to the Q8_0 embedding in the GGUF: u8 in groups of 32 with f16 scales) as int8
    per output channel: 9% less time per token (paired median of 6 interleaved rounds, p10-p90
    1.03-1.15x), perplexity 28.01 → 28.10 on the FAQ text. The embedding lookup keeps the GGUF's values."""
    import numpy as np
    import openvino as ov
    from openvino import opset13
    from openvino.passes import ConstantFolding, Manager

    head = None
    for op in model.get_ops():
        if op.get_type_name() == "MatMul":
            dim = op.get_output_partial_shape(0)[-1]
            if dim.is_static and (head is None or dim.get_length() > head[0]):
                head = (dim.get_length(), op)
    if head is None:
        return
    source = head[1].input_value(1)
    stack, quantized = [source.get_node()], False
    while stack:  # only a quantized (u8/i8) weight is re-quantized; f16/f32 heads stay as they are
        node = stack.pop()
        if node.get_type_name() == "Parameter":
            return
        if node.get_type_name() == "Constant" and node.get_output_element_type(0) in (ov.Type.u8, ov.Type.i8):
            quantized = True
        stack.extend(node.input_value(i).get_node() for i in range(node.get_input_size()))
    if not quantized:
        return
    folded = ov.Model([opset13.result(source)], []).clone()  # folding a clone leaves the embedding alone
    manager = Manager()
    manager.register_pass(ConstantFolding())
    manager.run_passes(folded)
    weight = np.array(folded.get_results()[0].input_value(0).get_node().get_data(), dtype=np.float32)
    scale = np.maximum(np.abs(weight).max(axis=1, keepdims=True), 1e-12) / 127.0
    q = np.clip(np.round(weight / scale), -127, 127).astype(np.int8)
    head[1].input(1).replace_source_output(
        opset13.multiply(opset13.convert(opset13.constant(q), ov.Type.f32),
                         opset13.constant(scale.astype(np.float32))).output(0))


def _exact_q4_1(xml: Path, gguf: Path) -> bool:
    """Rewrite the IR's Q4_1 weights so they equal the GGUF's d*q + m (see above); True if it did.

    A weight is Convert(u4 q) - Convert(u4 zero point), times f16 scales; each row is matched to its
    GGUF row by scales and values (openvino_genai may reorder rows, e.g. of attn_q/attn_k)."""
    import numpy as np
    import openvino as ov
    from openvino import opset13

    try:
        rows = _gguf_q4_1_rows(gguf)
        if not rows:
            return False
        model = ov.Core().read_model(str(xml))
        rewritten = 0
        for op in model.get_ops():
            if op.get_type_name() != "Subtract":
                continue
            w_convert, zp_convert = (op.input_value(i).get_node() for i in range(2))
            if w_convert.get_type_name() != "Convert" or zp_convert.get_type_name() != "Convert":
                continue
            weight, zero = w_convert.input_value(0).get_node(), zp_convert.input_value(0).get_node()
            if {weight.get_output_element_type(0), zero.get_output_element_type(0)} != {ov.Type.u4}:
                continue
            multiply = next(iter(op.output(0).get_target_inputs())).get_node()
            scale = multiply.input_value(1).get_node()
            if multiply.get_type_name() != "Multiply" or scale.get_type_name() != "Constant":
                continue
            q = _u4_values(weight)  # [rows, groups, 32]
            d = np.array(scale.get_data(), dtype=np.float16).reshape(q.shape[0], q.shape[1])
            m = np.empty(d.shape, dtype=np.float32)
            for r in range(q.shape[0]):
                match = rows.get(_row_key(d[r], q[r]))
                if match is None:
                    raise ValueError(f"{op.get_friendly_name()}: row {r} is not in the GGUF")
                m[r] = match[1]
            t = 16.0 * m / np.where(d == 0, 1, d).astype(np.float32)  # x / (d/16) = 16 q + t
            z8 = np.clip(-np.floor(t), 0, 255)
            c = np.clip(np.round(t + z8), 0, 15)
            q8 = (16 * q.astype(np.int32) + c[..., None].astype(np.int32)).astype(np.uint8)
            values = opset13.convert(opset13.constant(q8), ov.Type.f16)
            zero_point = opset13.convert(opset13.constant(z8[..., None].astype(np.uint8)), ov.Type.f16)
            scales = opset13.constant((d.astype(np.float32) / 16)[..., None].astype(np.float16))
            exact = opset13.multiply(opset13.subtract(values, zero_point), scales)
            multiply.output(0).replace(exact.output(0))
            rewritten += 1
        if not rewritten:
            return False
        _lm_head_int8(model)
        tmp = xml.with_name("exact_q4_1.xml")
        ov.save_model(model, str(tmp), compress_to_fp16=False)
        del model
        os.replace(tmp.with_suffix(".bin"), xml.with_suffix(".bin"))
        os.replace(tmp, xml)
        return True
    except Exception as exc:
        log.warning("kept openvino_genai's Q4_1 weights for %s: %s", gguf.name, exc)
        return False


class _Streamer:
    """TextStreamer (UTF-8-safe detokenized pieces) whose callback cannot crash the native pipeline."""

    def __init__(self, tokenizer: Any, on_token: OnToken) -> None:
        import openvino_genai

        self._on_token = on_token
        self._error: BaseException | None = None
        self._running = openvino_genai.StreamingStatus.RUNNING
        self._cancel = openvino_genai.StreamingStatus.CANCEL
        self.streamer = openvino_genai.TextStreamer(tokenizer, self._callback)

    def _callback(self, piece: str) -> Any:
        # an exception escaping into the C++ pipeline terminates the process: stop generation instead
        try:
            if piece:
                self._on_token(piece)
            return self._running
        except BaseException as error:
            self._error = error
            return self._cancel

    def reraise(self) -> None:
        """Raise, in the caller's thread, what the token callback raised."""
        if self._error is not None:
            raise self._error


def decode_rate(tpot_ms: float, output_tokens: int) -> float:
    """Tokens per second after the first token from the mean time per output token (0 if undefined)."""
    tpot_ms = _finite(tpot_ms)
    return 1000.0 / tpot_ms if tpot_ms > 0 and output_tokens > 1 else 0.0


def _finite(value: float) -> float:
    return float(value) if value is not None and math.isfinite(value) else 0.0


def _first_line(exc: BaseException) -> str:
    lines = [ln for ln in str(exc).strip().splitlines() if ln.strip()]
    return lines[-1][:300] if lines else type(exc).__name__


# -- remote OpenAI-compatible backend -----------------------------------------------------------------

def _http() -> Any:
    import httpx

    return httpx


class RemoteLLM:
    """Client of an OpenAI-compatible `/v1/chat/completions` server (streaming over SSE)."""

    def __init__(self, endpoint: str, *, model: str = "default", api_key: str | None = None,
                 timeout: float = 60) -> None:
        base = endpoint.rstrip("/")
        self.url = base + ("/chat/completions" if base.endswith("/v1") else "/v1/chat/completions")
        self.model = model
        self.name = f"{model}@{base}"
        self.timeout = timeout
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}

    def generate(self, messages: list[dict[str, str]], *, max_new_tokens: int,
                 on_token: OnToken | None = None, json_schema: dict | None = None,
                 stop: list[str] | None = None) -> Generation:
        """Send the chat to the server; stream pieces to `on_token` when given."""
        httpx = _http()
        body: dict[str, Any] = {"model": self.model, "messages": messages, "max_tokens": max_new_tokens,
                                "temperature": 0, "stream": on_token is not None}
        if stop:
            body["stop"] = stop
        if json_schema is not None:
            spec = {"name": "answer", "schema": json_schema, "strict": True}
            body["response_format"] = {"type": "json_schema", "json_schema": spec}
        if on_token is not None:
            body["stream_options"] = {"include_usage": True}
        start = time.perf_counter()
        try:
            with httpx.Client(timeout=self.timeout, headers=self._headers) as client:
                if on_token is None:
                    response = client.post(self.url, json=body)
                    response.raise_for_status()
                    return self._from_json(response.json(), start)
                with client.stream("POST", self.url, json=body) as response:
                    response.raise_for_status()
                    return self._from_stream(response.iter_lines(), on_token, start)
        except httpx.HTTPStatusError as exc:
            raise ModelError(f"the LLM endpoint {self.url} answered HTTP {exc.response.status_code}",
                             hint="Check --llm-endpoint / OVPERF_LLM_ENDPOINT, the model name and API key."
                             ) from None
        except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError) as exc:
            raise ModelError(f"the LLM endpoint {self.url} failed: {_first_line(exc)}",
                             hint="Check that the server is running and OpenAI-compatible.") from None

    def _from_json(self, data: dict[str, Any], start: float) -> Generation:
        text = data["choices"][0]["message"].get("content") or ""
        total_ms = (time.perf_counter() - start) * 1000
        return _remote_generation(text, data.get("usage"), total_ms, total_ms)

    def _from_stream(self, lines: Iterator[str], on_token: OnToken, start: float) -> Generation:
        pieces: list[str] = []
        usage: dict[str, Any] | None = None
        first_ms = 0.0
        for line in lines:
            if not line.startswith("data:"):
                continue
            payload = line[5:].strip()
            if payload == "[DONE]":
                break
            chunk = json.loads(payload)
            usage = chunk.get("usage") or usage
            for choice in chunk.get("choices") or []:
                piece = (choice.get("delta") or {}).get("content")
                if piece:
                    first_ms = first_ms or (time.perf_counter() - start) * 1000
                    pieces.append(piece)
                    on_token(piece)
        return _remote_generation("".join(pieces), usage, first_ms, (time.perf_counter() - start) * 1000,
                                  streamed=len(pieces))


def _remote_generation(text: str, usage: dict[str, Any] | None, first_ms: float, total_ms: float,
                       streamed: int = 0) -> Generation:
    usage = usage or {}
    output = int(usage.get("completion_tokens") or streamed)
    decode_s = (total_ms - first_ms) / 1000
    rate = (output - 1) / decode_s if output > 1 and decode_s > 0 else 0.0
    return Generation(text=text, input_tokens=int(usage.get("prompt_tokens") or 0), output_tokens=output,
                      first_token_ms=first_ms, total_ms=total_ms, tokens_per_s=rate)


# -- factory ------------------------------------------------------------------------------------------

def load_llm(settings: Settings, *, progress: Callable[[float, str], None] | None = None) -> LLM:
    """The LLM the settings ask for: the remote endpoint if set, else the local model (pulled if needed)."""
    if settings.llm_endpoint:
        return RemoteLLM(settings.llm_endpoint, model=settings.model or "default")
    from assistant.models import resolve_llm_path

    device = check_device(settings.device)  # fail fast, before any download
    path = resolve_llm_path(settings, progress=progress)
    if progress:
        progress(1.0, f"loading {path.name} on {device}")
    return OpenVINOLLM(path, device=device, cache_dir=settings.ov_cache_dir)

"""Text generation: the `LLM` protocol, the local OpenVINO backend and an OpenAI-compatible remote backend."""

from __future__ import annotations

import contextlib
import contextvars
import glob
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

from assistant import hugepages
from assistant.config import Settings
from assistant.engine import BatchingEngine
from assistant.errors import DeviceNotAvailable, GenerationCancelled, ModelError
from assistant.gguf_ir import GGUF_IR_FORMAT, rewrite_ir

OnToken = Callable[[str], None]
log = logging.getLogger(__name__)

# Measured on the default model (SmolLM2-135M Q4_1 GGUF), 2-core Xeon with AMX, assistant-like prompts
# (320 tokens sharing a 256-token prefix, 32 new tokens), medians of 8 interleaved runs:
#   default (PagedAttention + prefix cache, bf16)  ttft 102 ms, 34.1 ms/token, total 1151 ms
#   INFERENCE_PRECISION_HINT=f32                   ttft 103 ms, 22.4 ms/token, total  795 ms
#   ATTENTION_BACKEND=SDPA (no prefix cache)       ttft 384 ms (vs 130 ms default in the same run)
#   KV_CACHE_PRECISION u8 / f32                    no measurable difference
# So GGUF models keep the default backend (PagedAttention; prompt lookup below needs it) with f32
# precision. IR folders (other, larger models) keep the plugin defaults: bf16 may win there.
# Re-measured with `python -m benchmarks.llm_compare` (600-token RAG prompt, 128 tokens, EOS ignored,
# interleaved rounds, time per output token of plain decoding relative to this configuration):
#   ATTENTION_BACKEND=SDPA           0.91-0.96x per token, but 1.3-2.1x time to first token and no
#                                    prefix cache or prompt lookup (both need PagedAttention): not used
#   KV_CACHE_PRECISION f16 / f32     0.95 / 0.97x, later 1.04 / 1.03x over 12 rounds (noise either way)
#   DYNAMIC_QUANTIZATION_GROUP_SIZE  0: 1.19x; 64, 576, max: 1.16-1.20x
#   CPU_DENORMALS_OPTIMIZATION, PERFORMANCE_HINT=LATENCY, ENABLE_CPU_PINNING=True: within +-5% (noise)
#   INFERENCE_NUM_THREADS=1          1.33x on a quiet machine (better only while another process holds a
#                                    core); ENABLE_CPU_PINNING=False: no gain. Plugin defaults kept.
#   SchedulerConfig cache_size 1 GB or num_kv_blocks 256/1024 (KV cache allocated up front, not grown):
#   0.89-0.96x per token here (noise with a fresh process per run); kept for the prefix cache, see below.
#   TBB_PARTITIONER STATIC / AUTO    1.03 / 1.02x (fresh processes, 3 rounds): plugin default kept
#   bf16 with the int8 weights in the pattern of the plugin's fused MLP node (LLMMLP, AMX; the plugin
#   fuses it only at bf16): 30 MLPs fused, 1.07-1.11x per token (direct OpenVINO, 2 pairs): not used
# (The rows above came from resident worker processes, which favour the later-started worker by up to
# 1.25x; benchmarks/llm_compare.py now starts a fresh process per run. Small differences are noise.)
# Greedy answers must not depend on the load, and a repeated question or a shared system prompt should not
# be prefilled twice (prefix caching). openvino_genai's default KV cache (cache_size 0) starts small and grows
# on demand, evicting cached prefixes as it does: a repeated 236-token prompt was prefilled again (~200 ms
# instead of ~45 ms), and the cache's changing state changed 2-4 of 16 FAQ answers (96 tokens) between a
# batch of 16 and alone ("12 months" where alone it said "12 weeks"). A fixed 1 GB cache (cache_size 1; its
# pages are only touched as they fill: RSS +13 MB after 8 answers) keeps prefixes cached. The int8/int4
# matmuls' dynamic quantization of activations (the plugin default) still made results depend on how many
# tokens a step computes: 1 of 16 prompts changed between a batch and alone, and a prompt served from the
# prefix cache (computed in another batch) could answer otherwise than the same prompt computed afresh.
# With DYNAMIC_QUANTIZATION_GROUP_SIZE 0 (f32 activations) all 16 were identical batched and from the cache
# over 3 rounds. Its cost, engine alone (8 FAQ prompts twice, 32 tokens, 2 rounds, same hour): 0.85-0.97x
# tokens/s one request at a time, 0.70-0.86x with 8 at once. Answers that do not depend on who else is asking
# are worth that.
GGUF_PROPERTIES: dict[str, Any] = {"INFERENCE_PRECISION_HINT": "f32", "DYNAMIC_QUANTIZATION_GROUP_SIZE": 0,
                                   "prompt_lookup": True,
                                   "scheduler_config": {"enable_prefix_caching": True, "cache_size": 1}}
# Prompt lookup decoding (openvino_genai's `prompt_lookup` pipeline property): n-grams of the prompt are
# proposed as draft tokens and verified in one pass, so greedy output stays the same up to rounding: the
# verification pass computes several tokens in one batch, which can flip a near-tie (answers to the 10
# dev FAQ questions and 2 others: 12/12 identical; a free-form 32-token answer changed one word, as it
# also does between other batch sizes). The FAQ prompt asks the model to copy a sentence of
# the source, which is where it pays off. Measured: time per output token 0.58x of plain decoding on
# the benchmark prompt (suite run, 5 interleaved rounds; per-round paired median 0.61x; it varies with the
# text: 0.45-0.9x),
# +7% time to first token; FAQ answer generation 0.70x (median over the dev FAQ questions, 2 passes).
# (Those figures are of 5 draft tokens, which beat 3 and 8 one request at a time.) Batched, every draft
# token is computed for every request and the 2 cores have no idle compute left to spend on them: the
# engine alone (with dynamic quantization on), 8 FAQ prompts twice, 32 tokens, 3 rounds, tokens/s one
# request at a time / 8 at once:
# 2 drafts 134-140 / 298-316, 5 drafts 104-133 / 175-249, 1 draft 107-122 / 302-320, plain 91-94 / 284-335.
# So 2 draft tokens: in benchmarks/concurrency.py (2 interleaved rounds) 8 clients got 7.5-7.7 answers/s
# against 5.3-6.9 with 5, p95 1.78 s against 1.86-2.46 s, and one user's generation p50 (61 generated
# answers of 4 question sets) 196 ms against 205 ms, the same 6 of 61 sentences shown.
# Pass properties={"prompt_lookup": False, ...} for plain decoding (a prompt-lookup pipeline rejects
# requests without these two settings).
PROMPT_LOOKUP = {"num_assistant_tokens": 2, "max_ngram_size": 3}


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
                 stop: list[str] | None = None, cancel: threading.Event | None = None) -> Generation:
        """Generate a reply to `messages`, streaming text pieces to `on_token`; stop early once `cancel` is set."""
        ...


_CANCEL: contextvars.ContextVar[threading.Event | None] = contextvars.ContextVar("ovperf_llm_cancel", default=None)


@contextlib.contextmanager
def cancel_scope(cancel: threading.Event | None) -> Iterator[None]:
    """Generations started in this block (in this thread or context) stop at their next step once `cancel` is set.

    Front ends wrap a whole answer in it, so the assistant's own LLM call is cancelled with its request
    without threading the event through every layer in between."""
    token = _CANCEL.set(cancel)
    try:
        yield
    finally:
        _CANCEL.reset(token)


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
    """openvino_genai.ContinuousBatchingPipeline over a GGUF file or an OpenVINO IR folder; greedy decoding.

    Every `generate()` call, from any thread, joins one shared batch (`assistant.engine.BatchingEngine`):
    concurrent users decode together, each with its own settings, stop strings and stream."""

    def __init__(self, path: Path, *, device: str = "CPU", cache_dir: Path | None = None,
                 properties: dict[str, Any] | None = None, huge_pages: bool = True,
                 prompt_lookup: bool = True) -> None:
        self.path = Path(path)
        self.device = check_device(device)
        self.name = self.path.stem if self.path.is_file() else self.path.name
        is_gguf = self.path.suffix.lower() == ".gguf"
        if properties is None:
            properties = {**GGUF_PROPERTIES, "prompt_lookup": prompt_lookup} if is_gguf else {}
        self.properties = dict(properties)
        self.prompt_lookup = bool(self.properties.get("prompt_lookup"))
        start = time.perf_counter()
        try:
            if is_gguf and cache_dir is not None:
                self.pipeline = _load_gguf_cached(self.path, self.device, self.properties, cache_dir)
            elif is_gguf:  # same weights as with a cache (see gguf_ir), built in a throwaway folder
                with tempfile.TemporaryDirectory(prefix="ovperf-gguf-") as tmp:
                    self.pipeline = _load_gguf_cached(self.path, self.device, self.properties, Path(tmp),
                                                      compile_cache=False)
            else:
                self.pipeline = _load(self.path, self.device, self.properties, cache_dir)
        except RuntimeError as exc:
            raise ModelError(f"OpenVINO cannot load {self.path} on {self.device}: {_first_line(exc)}",
                             hint="Check that it is a supported GGUF (llama/qwen2/qwen3, Q4_0/Q4_1/Q8_0/F16) "
                                  "or an IR folder exported with: ovperf models convert") from None
        self.tokenizer = self.pipeline.get_tokenizer()
        self.engine = BatchingEngine(self.pipeline, name=self.name)
        if huge_pages:  # after a first token: the plugin lays out its weights on the first inference
            self.generate([{"role": "user", "content": "Hi"}], max_new_tokens=1)
            self.huge_pages = hugepages.back_with_huge_pages()
        else:
            self.huge_pages = hugepages.HugePageReport(skipped="turned off")
        self.load_ms = (time.perf_counter() - start) * 1000

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
        config = self.pipeline.get_config()
        config.max_new_tokens = max_new_tokens
        config.do_sample = False
        config.apply_chat_template = False  # the prompt is already templated
        if self.prompt_lookup:  # a prompt-lookup pipeline requires both on every request
            config.num_assistant_tokens = PROMPT_LOOKUP["num_assistant_tokens"]
            config.max_ngram_size = PROMPT_LOOKUP["max_ngram_size"]
        return config

    def generate(self, messages: list[dict[str, str]], *, max_new_tokens: int,
                 on_token: OnToken | None = None, json_schema: dict | None = None,
                 stop: list[str] | None = None, cancel: threading.Event | None = None) -> Generation:
        """Greedy generation over the chat-templated messages in the shared batch, optionally JSON-schema
        constrained; stops at the next step once `cancel` (or the enclosing `cancel_scope`) is set."""
        import openvino_genai

        config = self.generation_config(max_new_tokens)
        if json_schema is not None:
            schema = json.dumps(json_schema)
            config.structured_output_config = openvino_genai.StructuredOutputConfig(json_schema=schema)
        result = self.engine.generate(self.prompt(messages), config, on_token=on_token, stop=stop,
                                      cancel=cancel or _CANCEL.get())
        decode_ms = result.total_ms - result.first_token_ms
        rate = (result.output_tokens - 1) * 1000 / decode_ms if result.output_tokens > 1 and decode_ms > 0 else 0.0
        return Generation(text=result.text, input_tokens=result.input_tokens, output_tokens=result.output_tokens,
                          first_token_ms=result.first_token_ms, total_ms=result.total_ms, tokens_per_s=rate)

    def generate_ids(self, ids: list[int], config: Any, streamer: Any = None) -> Any:
        """One generation from token ids with the pipeline to itself (benchmarks measure one stream):
        waits for the running batch to finish, holds new requests back meanwhile; the EncodedGenerationResult."""
        import numpy as np
        import openvino as ov

        with self.engine.exclusive() as pipeline:
            return pipeline.generate([ov.Tensor(np.array([ids], dtype=np.int64))], [config], streamer)[0]

    def close(self) -> None:
        """Stop the engine's threads (pending requests fail with ModelError)."""
        self.engine.close()

    def __del__(self) -> None:
        # the engine's threads keep it (and the pipeline) alive until told to stop
        engine = self.__dict__.get("engine")
        if engine is not None:
            engine.close(wait=False)


def _load(path: Path, device: str, properties: dict[str, Any], cache_dir: Path | None) -> Any:
    import openvino_genai

    props = dict(properties)
    if not props.get("prompt_lookup", True):  # "off" is the default; the SDPA pipeline rejects the key
        del props["prompt_lookup"]
    scheduler = openvino_genai.SchedulerConfig()
    scheduler.enable_prefix_caching = False  # unless asked for: see GGUF_PROPERTIES
    for key, value in (props.pop("scheduler_config", None) or {}).items():
        setattr(scheduler, key, value)
    if cache_dir is not None and path.is_dir():  # compiled-blob cache for IR models
        cache_dir.mkdir(parents=True, exist_ok=True)
        props["CACHE_DIR"] = str(cache_dir)
    return openvino_genai.ContinuousBatchingPipeline(str(path), scheduler, device, props)


def _load_gguf_cached(gguf: Path, device: str, properties: dict[str, Any], cache_dir: Path, *,
                      compile_cache: bool = True) -> Any:
    """Load a GGUF through the IR openvino_genai built from it on a previous start (about 40% faster).

    The first start loads the GGUF with `enable_save_ov_model` from a scratch folder that links to it, so
    the IR lands in the cache, keyed by the file's size, mtime, the openvino_genai version and
    GGUF_IR_FORMAT. `gguf_ir.rewrite_ir` then rewrites it (exact Q4_1 weights, fused projections) and the
    pipeline is loaded from it. Compiled blobs (CACHE_DIR) go into the IR folder's `compiled/`, so they
    go when the IR does (an older IR format is removed after an upgrade).
    """
    import openvino_genai

    stat = gguf.stat()
    version = re.sub(r"[^\w.-]", "_", openvino_genai.get_version())
    same_runtime = f"{gguf.stem}-{stat.st_size}-{stat.st_mtime_ns}-{version}-"
    key = f"{same_runtime}{GGUF_IR_FORMAT}"
    ir_dir = cache_dir / "gguf-ir" / key

    def blobs(folder: Path) -> Path | None:
        return folder / "compiled" if compile_cache else None

    if (ir_dir / "openvino_model.xml").is_file() and (ir_dir / "openvino_tokenizer.xml").is_file():
        try:
            return _load(ir_dir, device, properties, blobs(ir_dir))
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
        _export_gguf(scratch / gguf.name, device)
        (scratch / gguf.name).unlink()
        if not (scratch / "openvino_model.xml").is_file():
            return _load(gguf, device, properties, None)
        rewrite_ir(scratch / "openvino_model.xml", gguf)  # False: the import was exact already
        if ir_dir.exists() and not (ir_dir / "openvino_tokenizer.xml").is_file():
            shutil.rmtree(ir_dir, ignore_errors=True)  # incomplete (no tokenizer): replace it
        if not ir_dir.exists():
            with contextlib.suppress(OSError):  # another process may have won the race
                os.replace(scratch, ir_dir)
                _remove_older_formats(ir_dir, same_runtime)
        built = ir_dir if (ir_dir / "openvino_tokenizer.xml").is_file() else scratch
        return _load(built, device, properties, blobs(built))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _export_gguf(gguf: Path, device: str) -> None:
    """Write the IR of a GGUF next to it: model, tokenizer and detokenizer (with the chat template).

    LLMPipeline does this; ContinuousBatchingPipeline with `enable_save_ov_model` saves the model only."""
    import openvino_genai

    openvino_genai.LLMPipeline(str(gguf), device, enable_save_ov_model=True, INFERENCE_PRECISION_HINT="f32")


def _remove_older_formats(ir_dir: Path, same_runtime: str) -> None:
    """Delete the IRs of this GGUF and openvino_genai version in an older GGUF_IR_FORMAT (about 190 MB
    each): after an upgrade they would never be read again. Other GGUFs and versions are left alone."""
    for sibling in ir_dir.parent.glob(f"{glob.escape(same_runtime)}*"):
        if sibling != ir_dir and sibling.is_dir():
            shutil.rmtree(sibling, ignore_errors=True)


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
                 stop: list[str] | None = None, cancel: threading.Event | None = None) -> Generation:
        """Send the chat to the server; stream pieces to `on_token` when given. With `cancel` (or an
        enclosing `cancel_scope`) the reply is streamed, so closing the connection stops the server's work."""
        httpx = _http()
        cancel = cancel or _CANCEL.get()
        if cancel is not None:
            on_token = _raise_when(cancel, then=on_token)
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


def _raise_when(cancel: threading.Event, *, then: OnToken | None = None) -> OnToken:
    """A token callback that stops reading the stream once `cancel` is set, else passes the piece to `then`."""
    def on_token(piece: str) -> None:
        if cancel.is_set():
            raise GenerationCancelled("the request was cancelled")
        if then is not None:
            then(piece)
    return on_token


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
    return OpenVINOLLM(path, device=device, cache_dir=settings.ov_cache_dir, huge_pages=settings.huge_pages,
                       prompt_lookup=settings.prompt_lookup)

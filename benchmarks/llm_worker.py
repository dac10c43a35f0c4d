"""One LLM backend in its own process, driven line by line over stdin/stdout (JSON).

    python -m benchmarks.llm_worker --backend openvino|llamacpp|torch --prompts FILE [options]

The orchestrator (benchmarks/llm_compare.py) starts a worker per backend, so that each has its own peak
RSS: by default a fresh one for every measured run (`run N`, then `quit`); with --resident one per
backend that gets every `run N` in turn (interleaved) and `quit` at the end.

Every backend gets the *same token ids* (prompt N of the prompts file, made by the openvino worker
with the GGUF's own tokenizer), decodes greedily and ignores EOS so that all produce exactly
`--new-tokens` tokens. Timing is the same for all: wall clock in this process from the call to the
first generated token (TTFT) and from the first to the last one (TPOT = that / (n - 1)); each
backend reports tokens through a per-token callback that does no detokenization.

Protocol: the worker prints one JSON object per line: {"event": "ready", ...} after loading and one
warm-up generation, {"event": "run", ...} per `run N`, {"event": "bye", ...} after `quit`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.common import peak_rss_mb, rss_mb  # noqa: E402

KEEP_TOKENS = 32  # generated ids reported per run, to compare backends' outputs


class Backend:
    """Load once; generate(ids, n) → (token ids, per-token timestamps, start time, engine metrics)."""

    name = "?"
    threads: int | None = None

    def generate(self, ids: list[int], new_tokens: int) -> tuple[list[int], list[float], float, dict]:
        raise NotImplementedError


# -- openvino-genai -----------------------------------------------------------------------------------

class OpenVINOBackend(Backend):
    """The product's OpenVINOLLM (same loading, properties and cache), or a variant of it."""

    name = "openvino"

    def __init__(self, model: Path, properties: dict[str, Any] | None, cache_dir: Path | None,
                 threads: int | None, scheduler: dict[str, Any] | None = None, plain: bool = False) -> None:

        from assistant.config import Settings
        from assistant.llm import GGUF_PROPERTIES, OpenVINOLLM

        defaults = GGUF_PROPERTIES if model.suffix == ".gguf" else {}
        props = None if properties is None else dict(properties)
        if plain:  # llm.py's properties without prompt lookup
            props = {**(props if props is not None else defaults), "prompt_lookup": False}
        if threads:
            props = {**(props if props is not None else defaults), "INFERENCE_NUM_THREADS": threads}
        if scheduler:  # fields over llm.py's scheduler settings (llm.py makes the SchedulerConfig)
            props = props if props is not None else dict(defaults)
            props["scheduler_config"] = {**(props.get("scheduler_config") or {}), **scheduler}
        self.llm = OpenVINOLLM(model, cache_dir=cache_dir, properties=props,
                               huge_pages=Settings.from_env(os.environ).huge_pages)
        self.huge_pages = self.llm.huge_pages.summary()
        self.properties = {k: str(v) for k, v in self.llm.properties.items()}
        self.threads = threads

    def generate(self, ids, new_tokens):
        import openvino_genai

        stamps: list[float] = []
        tokens: list[int] = []
        running = openvino_genai.StreamingStatus.RUNNING

        class TokenTimer(openvino_genai.StreamerBase):
            def write(self, token):  # one id, or several when a step yields more than one
                now = time.perf_counter()
                for t in token if isinstance(token, list) else [token]:
                    tokens.append(int(t))
                    stamps.append(now)
                return running

            def end(self):
                pass

        config = self.llm.generation_config(new_tokens)
        config.ignore_eos = True
        config.min_new_tokens = new_tokens
        streamer = TokenTimer()
        start = time.perf_counter()
        result = self.llm.generate_ids(ids, config, streamer)
        metrics = result.perf_metrics
        engine = {"ttft_ms": float(metrics.get_ttft().mean), "tpot_ms": float(metrics.get_tpot().mean),
                  "input_tokens": int(metrics.get_num_input_tokens()),
                  "output_tokens": int(metrics.get_num_generated_tokens())}
        return tokens, stamps, start, engine


def make_prompts(llm: Any, count: int, target_tokens: int) -> list[list[int]]:
    """`count` RAG-style prompts of exactly `target_tokens` ids: the assistant's one-shot FAQ prompt
    over real FAQ text. Each starts with a different request number, so no prefix cache (openvino's
    PagedAttention or llama.cpp's) can shorten a later run's first token."""
    from assistant.config import Settings
    from assistant.grounding import SYSTEM_PROMPT, build_messages
    from assistant.knowledge import load_knowledge

    chunks = [c for c in load_knowledge(Settings().knowledge_dirs) if c.kind != "row"]
    body = " ".join(" ".join(c.text.split()) for c in chunks)
    marker = "@@TEXT@@"

    class _Src:  # the shape build_messages expects
        title = ""
        text = marker

    question = "How is latency measured in the OpenVINO performance benchmarks?"
    prompts = []
    for index in range(count):
        messages = build_messages(question, _Src)  # type: ignore[arg-type]
        messages[0] = {"role": "system", "content": f"Request {index:03d}. {SYSTEM_PROMPT}"}
        templated = llm.prompt(messages)
        head, tail = templated.split(marker)
        head_ids = llm.tokenizer.encode(head, add_special_tokens=False).input_ids.data[0].tolist()
        tail_ids = llm.tokenize(tail)
        room = target_tokens - len(head_ids) - len(tail_ids)
        body_ids = llm.tokenize(body)
        while len(body_ids) < room:
            body_ids += body_ids
        prompts.append(head_ids + body_ids[: max(0, room)] + tail_ids)
    lengths = {len(p) for p in prompts}
    if len(lengths) != 1:
        shortest = min(lengths)
        prompts = [p[: shortest - len(tail_ids)] + tail_ids for p in prompts]
    return prompts


# -- llama.cpp ----------------------------------------------------------------------------------------

class LlamaCppBackend(Backend):
    """llama-cpp-python on the same GGUF, same threads; the whole prompt in one batch."""

    name = "llamacpp"

    def __init__(self, model: Path, threads: int, n_ctx: int, options: dict[str, Any] | None = None) -> None:
        import llama_cpp
        import llama_cpp.llama as llama_module

        from assistant import hugepages
        from assistant.config import Settings

        self.threads = threads
        options = dict(options or {})
        self.system_info = llama_cpp.llama_print_system_info().decode(errors="replace")
        # ggml's AMX matmul (built in when the CPU has AMX) segfaults on this model's Q4_1 tensors
        # (llama-cpp-python 0.3.36, in ggml_backend_amx_mul_mat), so an AMX build runs without the extra
        # (AMX / repacked) weight buffers unless told otherwise; a build without AMX keeps them.
        extra = options.pop("use_extra_bufts", "AMX_INT8 = 1" not in self.system_info)
        default_params = llama_cpp.llama_model_default_params

        def model_params():  # Llama() exposes no use_extra_bufts argument
            params = default_params()
            params.use_extra_bufts = bool(extra)
            return params

        llama_module.llama_cpp.llama_model_default_params = model_params
        lookup = options.pop("prompt_lookup", None)  # {"max_ngram_size": .., "num_pred_tokens": ..}
        # the same huge-page step as the product's OpenVINOLLM (it helps llama.cpp too when the weights are
        # in anonymous memory, use_mmap=False); OVPERF_HUGE_PAGES=0 turns it off for both
        huge_pages = options.pop("huge_pages", Settings.from_env(os.environ).huge_pages)
        kwargs = {"n_ctx": n_ctx, "n_batch": n_ctx, "n_ubatch": n_ctx, "n_threads": threads,
                  "n_threads_batch": threads, "verbose": False, **options}
        if lookup is not None:
            from llama_cpp.llama_speculative import LlamaPromptLookupDecoding

            kwargs["draft_model"] = LlamaPromptLookupDecoding(**lookup)
        self.llm = llama_cpp.Llama(model_path=str(model), **kwargs)
        self.huge_pages = (hugepages.back_with_huge_pages() if huge_pages
                           else hugepages.HugePageReport(skipped="turned off")).summary()
        if lookup is not None:
            kwargs["draft_model"] = f"LlamaPromptLookupDecoding({lookup})"
        self.options = {**{k: v for k, v in kwargs.items() if k != "verbose"}, "use_extra_bufts": bool(extra),
                        "llama_cpp_path": str(Path(llama_cpp.__file__).parent)}

    def generate(self, ids, new_tokens):
        import llama_cpp

        llm = self.llm
        llm.reset()  # n_tokens = 0: no prefix reuse, the KV cache is cleared by the next eval
        tokens: list[int] = []
        stamps: list[float] = []
        start = time.perf_counter()
        llama_cpp.llama_perf_context_reset(llm.ctx)
        for token in llm.generate(ids, top_k=1, top_p=1.0, min_p=0.0, temp=0.0, repeat_penalty=1.0,
                                  reset=True):
            stamps.append(time.perf_counter())
            tokens.append(int(token))
            if len(tokens) >= new_tokens:
                break
        perf = llama_cpp.llama_perf_context(llm.ctx)
        engine = {"prompt_eval_ms": perf.t_p_eval_ms, "n_prompt_eval": perf.n_p_eval,
                  "eval_ms": perf.t_eval_ms, "n_eval": perf.n_eval}
        if perf.n_eval:
            engine["tpot_ms"] = perf.t_eval_ms / perf.n_eval
        return tokens, stamps, start, engine


# -- PyTorch (transformers, eager) --------------------------------------------------------------------

class TorchBackend(Backend):
    """transformers' GGUF loader (dequantizes Q4_1 to float32) + eager attention, greedy generate()."""

    name = "torch"

    def __init__(self, model: Path, threads: int, dtype: str = "float32") -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import torch
        from transformers import AutoModelForCausalLM

        torch.set_num_threads(threads)
        self.threads = threads
        self.torch = torch
        self.model = AutoModelForCausalLM.from_pretrained(
            str(model.parent), gguf_file=model.name, dtype=getattr(torch, dtype),
            attn_implementation="eager").eval()
        self.options = {"dtype": dtype, "attn_implementation": "eager", "threads": threads,
                        "weights": "GGUF Q4_1 dequantized by transformers/gguf"}

    def generate(self, ids, new_tokens):
        from transformers.generation.streamers import BaseStreamer

        torch = self.torch
        tokens: list[int] = []
        stamps: list[float] = []

        class TokenTimer(BaseStreamer):
            def __init__(self) -> None:
                self.prompt_seen = False

            def put(self, value):
                now = time.perf_counter()
                if not self.prompt_seen:  # generate() first passes the prompt itself
                    self.prompt_seen = True
                    return
                for t in value.reshape(-1).tolist():
                    tokens.append(int(t))
                    stamps.append(now)

            def end(self):
                pass

        input_ids = torch.tensor([ids], dtype=torch.long)
        start = time.perf_counter()
        with torch.inference_mode():
            self.model.generate(input_ids, attention_mask=torch.ones_like(input_ids), do_sample=False,
                                max_new_tokens=new_tokens, min_new_tokens=new_tokens, streamer=TokenTimer(),
                                pad_token_id=0, temperature=None, top_p=None, top_k=None)
        return tokens, stamps, start, {}


# -- the loop -----------------------------------------------------------------------------------------

def timings(tokens: list[int], stamps: list[float], start: float) -> dict[str, Any]:
    """TTFT, TPOT, tokens/s and total from per-token timestamps."""
    n = len(stamps)
    ttft = (stamps[0] - start) * 1000 if n else None
    tpot = (stamps[-1] - stamps[0]) * 1000 / (n - 1) if n > 1 else None
    total = (stamps[-1] - start) * 1000 if n else None
    return {"ttft_ms": ttft, "tpot_ms": tpot, "decode_tokens_per_s": 1000 / tpot if tpot else None,
            "tokens_per_s": n / (total / 1000) if total else None, "total_ms": total, "output_tokens": n,
            "tokens": tokens[:KEEP_TOKENS]}


def emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", required=True, choices=["openvino", "llamacpp", "torch"])
    parser.add_argument("--model", type=Path, required=True, help="GGUF file (or IR folder for openvino)")
    parser.add_argument("--prompts", type=Path, required=True,
                        help="JSON list of prompt id lists (written here by --make-prompts)")
    parser.add_argument("--make-prompts", type=int, default=0, metavar="N",
                        help="openvino only: write N prompts of --prompt-tokens ids to --prompts first")
    parser.add_argument("--prompt-tokens", type=int, default=600)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--properties", default=None, help="openvino: JSON properties (default: llm.py's)")
    parser.add_argument("--scheduler", default=None, help="openvino: JSON SchedulerConfig fields")
    parser.add_argument("--plain", action="store_true",
                        help="openvino: plain greedy decoding (no prompt lookup even if llm.py enables it)")
    parser.add_argument("--set-threads", action="store_true",
                        help="openvino: pass INFERENCE_NUM_THREADS (default: the plugin's own choice)")
    parser.add_argument("--cache-dir", type=Path, default=None, help="openvino: llm.py's cache_dir")
    parser.add_argument("--options", default=None, help="llamacpp: JSON extra Llama() arguments")
    parser.add_argument("--dtype", default="float32", help="torch: weights/compute dtype")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    info: dict[str, Any] = {"backend": args.backend}
    if args.backend == "openvino":
        props = json.loads(args.properties) if args.properties else None
        sched = json.loads(args.scheduler) if args.scheduler else None
        backend: Backend = OpenVINOBackend(args.model, props, args.cache_dir,
                                           args.threads if args.set_threads else None, sched, args.plain)
        info["properties"] = backend.properties  # type: ignore[attr-defined]
        info["prompt_lookup"] = backend.llm.prompt_lookup  # type: ignore[attr-defined]
        info["scheduler"] = sched
        if args.make_prompts:
            prompts = make_prompts(backend.llm, args.make_prompts, args.prompt_tokens)  # type: ignore
            args.prompts.write_text(json.dumps(prompts))
    elif args.backend == "llamacpp":
        backend = LlamaCppBackend(args.model, args.threads, n_ctx=max(1024, args.prompt_tokens + args.new_tokens
                                                                      + 64),
                                  options=json.loads(args.options) if args.options else None)
        info["options"] = backend.options  # type: ignore[attr-defined]
        info["system_info"] = backend.system_info  # type: ignore[attr-defined]
    else:
        backend = TorchBackend(args.model, args.threads, args.dtype)
        info["options"] = backend.options  # type: ignore[attr-defined]
    info["huge_pages"] = getattr(backend, "huge_pages", None)
    info["load_s"] = round(time.perf_counter() - started, 3)
    info["rss_after_load_mb"] = rss_mb()
    prompts = json.loads(args.prompts.read_text())
    warm = backend.generate(prompts[0], args.new_tokens)  # warm-up, excluded (prompt 0 is never reused)
    info["warmup"] = {k: v for k, v in timings(*warm[:3]).items() if k != "tokens"}
    info["threads"] = args.threads
    emit({"event": "ready", **info})
    for line in sys.stdin:
        command = line.split()
        if not command:
            continue
        if command[0] == "quit":
            break
        if command[0] == "run":
            index = int(command[1])
            tokens, stamps, start, engine = backend.generate(prompts[index], args.new_tokens)
            emit({"event": "run", "prompt": index, "input_tokens": len(prompts[index]),
                  **timings(tokens, stamps, start), "engine": engine})
    emit({"event": "bye", "peak_rss_mb": peak_rss_mb(), "rss_mb": rss_mb()})
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""LLM generation: openvino-genai vs llama.cpp vs PyTorch eager on the same GGUF, interleaved.

Each backend runs in its own process (benchmarks/llm_worker.py), so peak RSS is per backend. All get
the same prompt token ids (~600-token RAG prompt), decode greedily and ignore EOS for exactly
`new_tokens` tokens, with the same thread count. Every round starts each backend in a new process (one
at a time, the order rotating every round), which does one excluded warm-up and one measured run, so
that neither background load nor process start order favours a backend (`--resident` keeps them all
loaded instead: faster, but see `_run_fresh`).

    python -m benchmarks.llm_compare [--backends openvino,llamacpp,torch] [--repeats 5]
        [--variant NAME='{"properties": {...}}' ...]

Variants are extra openvino workers with other properties / scheduler settings / model folder; they
are how the properties in assistant/llm.py were chosen.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT, summary

BACKENDS = ("openvino", "openvino-plain", "llamacpp", "llamacpp-lookup", "torch")
DEFAULT_BACKENDS = ("openvino", "openvino-plain", "llamacpp", "torch")
# Built-in workers: label → (engine, variant spec). "openvino" is the assistant's configuration
# (assistant/llm.py: exact Q4_1 weights as int8, f32, prompt lookup, huge pages); "-plain" is the same
# without prompt lookup, the engine-to-engine comparison with llama.cpp's plain decoding.
# llama-cpp-python's own prompt lookup (LlamaPromptLookupDecoding, in Python) is slower than its plain
# decoding here, so it is optional.
BUILTIN: dict[str, tuple[str, dict[str, Any] | None]] = {
    "openvino": ("openvino", None),
    "openvino-plain": ("openvino", {"plain": True}),
    "llamacpp": ("llamacpp", None),
    "llamacpp-lookup": ("llamacpp", {"options": {"prompt_lookup": {"max_ngram_size": 3, "num_pred_tokens": 5}}}),
    "torch": ("torch", None),
}
METRICS = ("ttft_ms", "tpot_ms", "decode_tokens_per_s", "tokens_per_s", "total_ms")


def default_model() -> Path:
    from assistant.config import Settings
    from assistant.models import resolve_llm_path

    return resolve_llm_path(Settings.from_env(os.environ, auto_pull=False))


def available(backend: str) -> str | None:
    """None when the backend's packages are importable, else why not."""
    import importlib.util

    needs = {"openvino": ["openvino_genai"], "llamacpp": ["llama_cpp"], "torch": ["torch", "transformers", "gguf"]}
    missing = [m for m in needs[backend] if importlib.util.find_spec(m) is None]
    return f"missing {', '.join(missing)} (pip install -e '.[bench]')" if missing else None


class Worker:
    """A running llm_worker process."""

    def __init__(self, label: str, command: list[str], env: dict[str, str]) -> None:
        self.label = label
        self.command = command
        self.proc = subprocess.Popen(command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=env)
        self.ready: dict[str, Any] | None = None
        self.runs: list[dict[str, Any]] = []
        self.bye: dict[str, Any] = {}
        self.error: str | None = None

    def read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        while True:
            line = self.proc.stdout.readline()
            if not line:
                err = self.proc.stderr.read() if self.proc.stderr else ""
                raise RuntimeError(f"{self.label} worker exited: {err.strip()[-1500:]}")
            line = line.strip()
            if line.startswith("{"):
                return json.loads(line)

    def send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.send("quit")
                self.bye = self.read()
                self.proc.wait(timeout=60)
            except Exception as exc:
                self.error = self.error or str(exc)
                self.proc.kill()


def _command(backend: str, model: Path, prompts: Path, args: argparse.Namespace,
             variant: dict[str, Any] | None = None) -> list[str]:
    command = [sys.executable, "-m", "benchmarks.llm_worker", "--backend", backend, "--model", str(model),
               "--prompts", str(prompts), "--prompt-tokens", str(args.prompt_tokens),
               "--new-tokens", str(args.new_tokens), "--threads", str(args.threads)]
    if backend == "openvino":
        from assistant.config import Settings

        cache = (variant or {}).get("cache_dir", str(Settings.from_env(os.environ).ov_cache_dir))
        if cache:
            command += ["--cache-dir", cache]
        if variant:
            if "properties" in variant:
                command += ["--properties", json.dumps(variant["properties"])]
            if "scheduler" in variant:
                command += ["--scheduler", json.dumps(variant["scheduler"])]
            if variant.get("set_threads"):
                command += ["--set-threads"]
            if variant.get("plain"):
                command += ["--plain"]
    if backend == "llamacpp" and variant and "options" in variant:
        command += ["--options", json.dumps(variant["options"])]
    return command


def run(args: argparse.Namespace, log=print) -> dict[str, Any]:
    """Start the workers, interleave the runs, return per-backend summaries."""
    model = Path(args.model) if args.model else default_model()
    unknown = [b for b in args.backends if b not in BACKENDS]
    if unknown:
        raise ValueError(f"unknown LLM backend(s) {', '.join(unknown)}; choose from {', '.join(BACKENDS)}")
    skipped = {b: why for b in args.backends if (why := available(BUILTIN[b][0]))}
    specs: list[tuple[str, str, Path, dict[str, Any] | None]] = []  # label, backend, model, variant
    for label in args.backends:
        if label not in skipped:
            specs.append((label, BUILTIN[label][0], model, BUILTIN[label][1]))
    for name, spec in (args.variants or {}).items():
        specs.append((name, spec.get("backend", "openvino"), Path(spec.get("model", model)), spec))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    n_prompts = args.repeats + 1
    result: dict[str, Any] = {"model": str(model), "prompt_tokens": args.prompt_tokens,
                              "new_tokens": args.new_tokens, "threads": args.threads,
                              "repeats": args.repeats, "processes": "resident" if args.resident else "fresh",
                              "skipped": skipped, "backends": {}}
    with tempfile.TemporaryDirectory(prefix="llm-bench-") as tmp:
        prompts = Path(tmp) / "prompts.json"
        # the openvino worker tokenizes first (it writes the prompts the others read)
        specs.sort(key=lambda s: s[1] != "openvino")
        if not specs or specs[0][1] != "openvino":
            raise RuntimeError("the openvino backend is needed to tokenize the prompts")
        commands = {label: _command(backend, path, prompts, args, variant) for label, backend, path, variant in specs}
        envs = {label: {**env, **((variant or {}).get("env") or {})} for label, _, _, variant in specs}
        labels = [label for label, *_ in specs]
        if args.resident:
            workers = _run_resident(labels, commands, envs, n_prompts, args, log)
        else:
            workers = _run_fresh(labels, commands, envs, n_prompts, args, log)
        prompt_ids = json.loads(prompts.read_text()) if prompts.exists() else []
    references = [w for w in workers if w.label in ("openvino", "llamacpp") and w.runs]
    for worker in workers:
        entry: dict[str, Any] = {"backend": worker.command[worker.command.index("--backend") + 1],
                                 "command": " ".join(worker.command[1:])}
        if worker.error:
            entry["error"] = worker.error[-2000:]
        if worker.ready:
            entry.update({k: v for k, v in worker.ready.items() if k not in {"event", "backend"}})
        entry.update(peak_rss_mb=worker.bye.get("peak_rss_mb"), rss_end_mb=worker.bye.get("rss_mb"))
        if worker.runs:
            entry.update({m: summary([r[m] for r in worker.runs]) for m in METRICS})
            entry["input_tokens"] = worker.runs[0]["input_tokens"]
            entry["output_tokens"] = [r["output_tokens"] for r in worker.runs]
            entry["runs"] = [{k: v for k, v in r.items() if k not in {"event", "tokens"}} for r in worker.runs]
            entry["first_tokens"] = worker.runs[0]["tokens"]
            for reference in references:
                if reference is not worker:
                    entry[f"same_tokens_as_{reference.label}"] = _agreement(reference.runs, worker.runs)
        result["backends"][worker.label] = entry
    result["prompt_tokens_actual"] = len(prompt_ids[0]) if prompt_ids else None
    result["ratios"] = ratios(result["backends"])
    result["paired_ratios"] = paired_ratios(workers)
    return result


def _start(label: str, command: list[str], env: dict[str, str], log) -> Worker:
    """A worker that has loaded its model and done its warm-up (or failed: `error` is set)."""
    worker = Worker(label, command, env)
    try:
        worker.ready = worker.read()
    except RuntimeError as exc:
        worker.error = str(exc)
        log(f"  {label} failed: {worker.error[-300:]}")
    return worker


def _measure(worker: Worker, round_index: int, pause: float) -> None:
    time.sleep(pause)
    worker.send(f"run {round_index + 1}")
    try:
        worker.runs.append(worker.read())
    except RuntimeError as exc:
        worker.error = str(exc)


def _log_round(log, round_index: int, repeats: int, workers: list[Worker]) -> None:
    log(f"  round {round_index + 1}/{repeats}: " + ", ".join(
        f"{w.label} {w.runs[-1]['tpot_ms']:.2f} ms/tok" for w in workers if w.runs and not w.error))


def _run_fresh(labels: list[str], commands: dict[str, list[str]], envs: dict[str, dict[str, str]],
               n_prompts: int, args: argparse.Namespace, log) -> list[Worker]:
    """Every round starts each backend in a new process, one process at a time, in a rotating order.

    Measured on this machine with several identical openvino workers alive at once: the later a worker
    was started, the faster it ran (1.17x and 1.25x for the 3rd and 4th copy of the same configuration,
    8 rounds). Fresh processes in a rotating order, alone on the machine, remove that bias."""
    first = labels[0]
    maker = _start(first, commands[first] + ["--make-prompts", str(n_prompts)], envs[first], log)
    maker.close()
    if maker.error:
        return [maker]
    records: dict[str, Worker] = {}
    for round_index in range(args.repeats):
        shift = round_index % len(labels)
        done = []
        for label in labels[shift:] + labels[:shift]:
            if label in records and records[label].error:
                continue
            log(f"  loading {label} ...")
            worker = _start(label, commands[label], envs[label], log)
            if worker.ready:
                _measure(worker, round_index, args.pause)
            worker.close()
            record = records.setdefault(label, worker)
            if record is not worker:
                record.runs.extend(worker.runs)
                record.error = record.error or worker.error
                peaks = [w.bye.get("peak_rss_mb") for w in (record, worker) if w.bye.get("peak_rss_mb")]
                record.bye = {**worker.bye, "peak_rss_mb": max(peaks) if peaks else None}
            done.append(record)
        _log_round(log, round_index, args.repeats, done)
    return [records[label] for label in labels if label in records]


def _run_resident(labels: list[str], commands: dict[str, list[str]], envs: dict[str, dict[str, str]],
                  n_prompts: int, args: argparse.Namespace, log) -> list[Worker]:
    """All backends loaded once, then round-robin runs (faster; biased towards the later-started)."""
    workers = []
    for index, label in enumerate(labels):
        log(f"  loading {label} ...")
        extra = ["--make-prompts", str(n_prompts)] if index == 0 else []
        workers.append(_start(label, commands[label] + extra, envs[label], log))
    live = [w for w in workers if w.ready]
    for round_index in range(args.repeats):
        shift = round_index % max(1, len(live))
        for worker in live[shift:] + live[:shift]:
            if not worker.error:
                _measure(worker, round_index, args.pause)
        _log_round(log, round_index, args.repeats, live)
    for worker in workers:
        worker.close()
    return workers


def _pairs(labels: list[str]) -> list[tuple[str, str]]:
    """(openvino worker, other worker) pairs to compare: each openvino* worker against every other worker."""
    bases = [label for label in labels if label.startswith("openvino")]
    return [(a, b) for a in bases for b in labels if b != a and not (b.startswith("openvino") and
                                                                     labels.index(b) < labels.index(a))]


def paired_ratios(workers: list[Worker]) -> dict[str, Any]:
    """a / b per round (the two ran back to back), then the median over rounds: more robust to load that
    comes and goes than the ratio of the medians."""
    by_label = {w.label: w for w in workers if w.runs}
    out: dict[str, Any] = {}
    for a, b in _pairs(list(by_label)):
        mine = {r["prompt"]: r for r in by_label[a].runs}
        for metric in ("tpot_ms", "ttft_ms"):
            values = [mine[r["prompt"]][metric] / r[metric] for r in by_label[b].runs
                      if r["prompt"] in mine and r.get(metric) and mine[r["prompt"]].get(metric)]
            if values:
                out[f"{a}_{metric.split('_')[0]}_vs_{b}"] = summary(values)
    return out


def _agreement(reference: list[dict[str, Any]], runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Length of the common prefix of generated ids per prompt (of the first 32 ids reported)."""
    by_prompt = {r["prompt"]: r["tokens"] for r in reference}
    prefixes = []
    for run_ in runs:
        ref = by_prompt.get(run_["prompt"])
        if ref is None:
            continue
        n = 0
        for a, b in zip(ref, run_["tokens"], strict=False):
            if a != b:
                break
            n += 1
        prefixes.append(n)
    return {"common_prefix_tokens": min(prefixes) if prefixes else None, "of": len(reference[0]["tokens"])}


def ratios(backends: dict[str, Any]) -> dict[str, Any]:
    """Ratios of the medians (time per output token, time to first token) from the same run."""
    def median(label: str, metric: str) -> float | None:
        return ((backends.get(label) or {}).get(metric) or {}).get("median")

    out: dict[str, Any] = {}
    for a, b in _pairs([label for label in backends if median(label, "tpot_ms")]):
        for metric in ("tpot_ms", "ttft_ms"):
            top, bottom = median(a, metric), median(b, metric)
            if top and bottom:
                out[f"{a}_{metric.split('_')[0]}_vs_{b}"] = round(top / bottom, 3)
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--llm-backends", dest="backends", default=",".join(DEFAULT_BACKENDS),
                        type=lambda s: [b.strip() for b in s.split(",") if b.strip()],
                        help=f"comma list of {', '.join(BACKENDS)} (default: {','.join(DEFAULT_BACKENDS)})")
    parser.add_argument("--llm-model", dest="model", default=None, help="GGUF (default: the assistant's)")
    parser.add_argument("--prompt-tokens", type=int, default=600)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--pause", type=float, default=0.3, help="seconds of idle before each run")
    parser.add_argument("--resident", action="store_true",
                        help="load every backend once and keep them all alive (faster, but see _run_fresh)")
    parser.add_argument("--variant", dest="variant_specs", action="append", default=[],
                        metavar="NAME=JSON", help="extra worker: {backend, model, properties, scheduler, "
                                                  "set_threads, plain, cache_dir, options, env}")


def parse_variants(specs: list[str]) -> dict[str, dict[str, Any]]:
    variants = {}
    for spec in specs:
        name, _, text = spec.partition("=")
        variants[name.strip()] = json.loads(text) if text else {}
    return variants


def main(argv: list[str] | None = None) -> int:
    from benchmarks.common import RESULTS_DIR, machine_info

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    args.variants = parse_variants(args.variant_specs)
    result = {"machine": machine_info(), "llm": run(args)}
    out = args.output or RESULTS_DIR / f"llm-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    for label, entry in result["llm"]["backends"].items():
        if "tpot_ms" in entry:
            print(f"{label:24s} ttft {entry['ttft_ms']['median']:8.1f} ms  tpot {entry['tpot_ms']['median']:6.2f} "
                  f"ms [{entry['tpot_ms']['p10']:.2f}-{entry['tpot_ms']['p90']:.2f}]  "
                  f"peak {entry['peak_rss_mb']} MB  same as openvino/llamacpp "
                  f"{(entry.get('same_tokens_as_openvino') or {}).get('common_prefix_tokens')}/"
                  f"{(entry.get('same_tokens_as_llamacpp') or {}).get('common_prefix_tokens')}")
        else:
            print(f"{label:24s} {entry.get('error', 'no runs')[-300:]}")
    print(json.dumps(result["llm"]["ratios"]))
    for key, stats in result["llm"]["paired_ratios"].items():
        print(f"paired {key}: median {stats['median']:.3f} [p10 {stats['p10']:.3f}, p90 {stats['p90']:.3f}]")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The suite's measurements other than LLM generation (that one is benchmarks/llm_compare.py).

Each function returns a JSON-able dict; `benchmarks/suite.py` runs them in order and reports.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT, interleaved, summary

DEV_QUESTIONS = Path(os.environ.get("OVPERF_DEV_QUESTIONS", ROOT.parent / "shared" / "eval" / "dev.jsonl"))
PROBE = "How is latency measured in the OpenVINO performance benchmarks?"


# -- 2. embedding one query, index build ------------------------------------------------------------

def embedding(runs: int, builds: int, log=print) -> dict[str, Any]:
    """One-query latency of the OpenVINO and torch embedders (interleaved), and index build time."""
    from assistant.config import Settings
    from assistant.knowledge import load_knowledge
    from assistant.retrieval import Embedder, Retriever

    settings = Settings.from_env(os.environ)
    ov = Embedder(settings.embedder_cache_dir)
    torch_embedder = Embedder(settings.embedder_cache_dir, backend="torch")
    a, b = ov.encode([PROBE]), torch_embedder.encode([PROBE])
    samples = interleaved({"openvino": lambda: ov.encode([PROBE]),
                           "torch": lambda: torch_embedder.encode([PROBE])}, runs, warmup=5)
    result: dict[str, Any] = {
        "query": PROBE,
        "openvino_ms": summary(samples["openvino"]), "torch_ms": summary(samples["torch"]),
        "openvino_load_s": round(ov.load_seconds, 3), "openvino_loaded_from_cache": ov.loaded_from_cache,
        "torch_load_s": round(torch_embedder.load_seconds, 3),
        "cosine_openvino_vs_torch": round(float((a * b).sum()), 6),
    }
    result["ratio_openvino_vs_torch"] = round(result["openvino_ms"]["median"] / result["torch_ms"]["median"], 3)
    log(f"  embed: openvino {result['openvino_ms']['median']:.2f} ms, torch {result['torch_ms']['median']:.2f} ms")
    chunks = load_knowledge(settings.knowledge_dirs)
    build_s, load_s = [], []
    with tempfile.TemporaryDirectory(prefix="bench-index-") as tmp:
        index_dir = Path(tmp) / "index"
        for _ in range(builds):
            report = Retriever.build(chunks, index_dir=index_dir, embedder=ov)
            build_s.append(report.seconds)
            start = time.perf_counter()
            Retriever.load_or_build(chunks, index_dir=index_dir, embedder=ov)
            load_s.append(time.perf_counter() - start)
    result["index"] = {"chunks": len(chunks), "knowledge": [str(d) for d in settings.knowledge_dirs],
                       "build_s": summary(build_s, digits=4), "load_s": summary(load_s, digits=4)}
    log(f"  index build {result['index']['build_s']['median']:.3f} s for {len(chunks)} chunks")
    return result


# -- 3. retrieval end to end ------------------------------------------------------------------------

def retrieval(rounds: int, log=print) -> dict[str, Any]:
    """`Retriever.search` (embed + faiss + BM25 + fusion), query-vector cache off and on."""
    from assistant.config import Settings
    from assistant.knowledge import load_knowledge
    from assistant.retrieval import Embedder, Retriever
    from benchmarks.retrieval_bench import QUERIES

    settings = Settings.from_env(os.environ)
    embedder = Embedder(settings.embedder_cache_dir)
    chunks = load_knowledge(settings.knowledge_dirs)
    questions = [q["question"] for q in _dev_questions()] or []
    queries = list(dict.fromkeys([*QUERIES, *questions]))
    result: dict[str, Any] = {"queries": len(queries), "k": settings.top_k}
    with tempfile.TemporaryDirectory(prefix="bench-retrieval-") as tmp:
        index_dir = Path(tmp) / "index"
        Retriever.build(chunks, index_dir=index_dir, embedder=embedder)
        retrievers = {label: Retriever.load_or_build(chunks, index_dir=index_dir, embedder=embedder,
                                                     query_cache_size=size)
                      for label, size in (("new_query", 0), ("repeated_query", 256))}
        samples: dict[str, list[float]] = {label: [] for label in retrievers}
        for retriever in retrievers.values():
            for query in queries:  # warm-up (fills the cache of the caching one)
                retriever.search(query, k=settings.top_k)
        for round_index in range(rounds):
            order = list(retrievers) if round_index % 2 == 0 else list(retrievers)[::-1]
            for label in order:
                for query in queries:
                    start = time.perf_counter()
                    retrievers[label].search(query, k=settings.top_k)
                    samples[label].append((time.perf_counter() - start) * 1000)
    for label, values in samples.items():
        result[f"{label}_ms"] = summary(values)
    log(f"  search p50 {result['new_query_ms']['median']:.2f} ms, p99 {result['new_query_ms']['p99']:.2f} ms")
    return result


# -- 4. answers through Assistant --------------------------------------------------------------------

def _dev_questions() -> list[dict[str, Any]]:
    if not DEV_QUESTIONS.is_file():
        return []
    return [json.loads(line) for line in DEV_QUESTIONS.read_text().splitlines() if line.strip()]


WARMUP_QUESTIONS = [  # not in the dev set: they load the LLM and warm the caches without answering it
    "What does the throughput hint do in benchmark_app?",
    "Which input size does mobilenet-v2 use?",
]


def _other_language_questions(per_language: int = 4) -> list[dict[str, Any]]:
    """Questions in other languages from the intent corpus (their answers' latency, not their scores)."""
    from assistant.intent import CORPUS

    picked: list[dict[str, Any]] = []
    for line in CORPUS.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        lang = record["lang"]
        if lang != "en" and sum(q["lang"] == lang for q in picked) < per_language:
            picked.append({"id": f"corpus-{lang}-{len(picked)}", "kind": record["label"],
                           "question": record["question"], "lang": lang})
    return picked


def answers(passes: int, log=print) -> dict[str, Any]:
    """Warm answers (model loaded, warm-up questions asked) to the dev questions, tools planned.

    Pass 1 asks every question for the first time (no query-vector or prompt-prefix reuse beyond the
    fixed system prompt); later passes ask them again, which openvino's prefix cache and the query
    cache shorten, so they are reported apart."""
    from assistant.config import Settings
    from assistant.core import Assistant
    from assistant.evaluation import fact_ok

    questions = _dev_questions()
    if not questions:
        return {"error": f"no dev questions at {DEV_QUESTIONS}"}
    questions += _other_language_questions()
    settings = Settings.from_env(os.environ, tools_mode="plan")
    start = time.perf_counter()
    assistant = Assistant.create(settings)
    create_s = time.perf_counter() - start
    start = time.perf_counter()
    assistant.llm()
    llm_load_s = time.perf_counter() - start
    for question in WARMUP_QUESTIONS:
        assistant.ask(question, tools="plan")
    rows: list[dict[str, Any]] = []
    for pass_index in range(passes):
        for item in questions:
            start = time.perf_counter()
            answer = assistant.ask(item["question"], tools="plan")
            wall = (time.perf_counter() - start) * 1000
            timings = answer.timings_ms
            rows.append({"pass": pass_index + 1, "id": item.get("id"), "kind": item.get("kind"),
                         "route": answer.route, "first_token_ms": timings.get("first_token", wall),
                         "total_ms": timings.get("total", wall), "wall_ms": wall,
                         "retrieval_ms": timings.get("retrieval"), "generation_ms": timings.get("generation"),
                         "facts_ok": fact_ok(answer.answer, item["facts"]) if item.get("facts") else None})
        log(f"  pass {pass_index + 1}/{passes} done")

    def block(selected: list[dict[str, Any]]) -> dict[str, Any]:
        facts = [r["facts_ok"] for r in selected if r["facts_ok"] is not None]
        return {"n": len(selected), "first_token_ms": summary([r["first_token_ms"] for r in selected], digits=1),
                "total_ms": summary([r["total_ms"] for r in selected], digits=1),
                "generation_ms": summary([r["generation_ms"] for r in selected if r["generation_ms"]], digits=1),
                "facts_ok": f"{sum(facts)}/{len(facts)}"}

    first = [r for r in rows if r["pass"] == 1]
    for row in rows:
        row["language"] = next(q.get("lang", "en") for q in questions if q.get("id") == row["id"])
    result: dict[str, Any] = {
        "questions": len(questions), "source": str(DEV_QUESTIONS), "passes": passes, "tools": "plan",
        "create_s": round(create_s, 3), "llm_load_s": round(llm_load_s, 3),
        "all_first_pass": block(first),
        "llm_answers_first_pass": block([r for r in first if r["generation_ms"]]),
        "other_languages_first_pass": block([r for r in first if r["language"] != "en"]),
        "by_kind_first_pass": {kind: block([r for r in first if r["kind"] == kind])
                               for kind in sorted({r["kind"] for r in first})},
        "rows": rows,
    }
    if passes > 1:
        result["all_repeat_passes"] = block([r for r in rows if r["pass"] > 1])
    a = result["all_first_pass"]
    log(f"  answers p50 first token {a['first_token_ms']['median']:.0f} ms, total {a['total_ms']['median']:.0f} ms,"
        f" p95 total {a['total_ms']['p95']:.0f} ms")
    return result


# -- 5. cold start -------------------------------------------------------------------------------------

COLD_QUESTION = "How is latency measured?"


def _ovperf() -> list[str]:
    exe = Path(sys.executable).parent / "ovperf"
    return [str(exe)] if exe.is_file() else [sys.executable, "-m", "assistant.cli"]


def _one_start(cache_dir: Path) -> dict[str, Any]:
    env = {**os.environ, "OVPERF_CACHE_DIR": str(cache_dir)}
    start = time.perf_counter()
    proc = subprocess.Popen([*_ovperf(), "ask", COLD_QUESTION, "--json"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    answer_s = None
    answer: dict[str, Any] = {}
    for line in proc.stdout:
        if line.lstrip().startswith("{"):
            answer_s = time.perf_counter() - start
            answer = json.loads(line)
    proc.wait()
    exit_s = time.perf_counter() - start
    err = proc.stderr.read() if proc.stderr else ""
    return {"answer_s": round(answer_s, 3) if answer_s else None, "exit_s": round(exit_s, 3),
            "returncode": proc.returncode, "timings_ms": answer.get("timings_ms"),
            "answered": bool(answer.get("answer")), **({"stderr": err[-800:]} if proc.returncode else {})}


def cold_start(cached_runs: int, first_runs: int = 1, log=print) -> dict[str, Any]:
    """`ovperf ask QUESTION --json` in a fresh process: with an empty cache dir (embedder export, index
    build, GGUF→IR, compile) and again with the caches it left. Models stay in models/."""
    first, cached = [], []
    with tempfile.TemporaryDirectory(prefix="bench-cold-") as tmp:
        for index in range(first_runs):
            cache = Path(tmp) / f"cache{index}"
            first.append(_one_start(cache))
            log(f"  first start (empty cache): {first[-1]['answer_s']} s")
            if index + 1 < first_runs:
                continue
            for _ in range(cached_runs):
                cached.append(_one_start(cache))
                log(f"  cached start: {cached[-1]['answer_s']} s")
    return {"question": COLD_QUESTION, "command": " ".join([*_ovperf(), "ask", repr(COLD_QUESTION), "--json"]),
            "first_run_s": summary([r["answer_s"] for r in first]),
            "cached_run_s": summary([r["answer_s"] for r in cached]),
            "runs": {"first": first, "cached": cached}}


# -- 6. benchmark-tool overhead -------------------------------------------------------------------------

def tool_overhead(seconds: int, repeats: int, log=print) -> dict[str, Any]:
    """run_benchmark vs the same benchmark_app command, alternating (benchmarks/tool_overhead.py)."""
    from assistant.config import Settings
    from benchmarks.tool_overhead import compare

    with tempfile.TemporaryDirectory(prefix="bench-tool-") as tmp:
        workdir = Path(tmp)
        settings = Settings(cache_dir=workdir / "cache", history_db=workdir / "cache" / "history.sqlite")
        row = compare(settings, ("resnet-50", "fp32", "latency"), seconds, repeats, workdir)
    return {"seconds": seconds, "repeats": repeats, **row}


def have_benchmark_app() -> bool:
    from assistant.tools.benchmark import benchmark_app_path

    try:
        return bool(benchmark_app_path())
    except Exception:
        return bool(shutil.which("benchmark_app"))

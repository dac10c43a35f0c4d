"""Retrieval latency: one-query embedding (OpenVINO vs torch) and end-to-end `Retriever.search`.

    python benchmarks/retrieval_bench.py [--knowledge DIR ...] [--runs 50] [--cache-dir DIR]

Measures: embedder start (export once, then load from the IR cache), per-query embedding latency
for both backends (median/p10/p90 over --runs after warm-up), index build and load time, and
`search` p50/p99 over a query set with the query-vector cache disabled (cold) and enabled (warm).
Writes benchmarks/results/retrieval.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant.config import Settings  # noqa: E402
from assistant.knowledge import Chunk, load_knowledge  # noqa: E402
from assistant.retrieval import Embedder, Retriever  # noqa: E402
from benchmarks.common import machine_info, time_calls  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "retrieval.json"
PROBE = "How is latency measured in the OpenVINO performance benchmarks?"
QUERIES = [
    "How often are the performance benchmarks updated?",
    "Where can I download the models used for benchmarking?",
    "How do I reproduce the benchmark results on my own machine?",
    "Which tool should I use to benchmark large language models?",
    "How is latency measured?",
    "Why are INT8 models used on CPUs without VNNI?",
    "Where can I buy the hardware used in the benchmarks?",
    "How can I optimize my model for better performance?",
    "Will new models be added to the benchmark list?",
    "What input size does resnet-50 use?",
    "Which task is yolov8n benchmarked for?",
    "What is the context length for Llama-3-8b?",
    "Which models use a 128K input size?",
    "benchmark_app throughput latency hint",
    "llm_bench first token latency",
    "major.minor release",
    "224x224 image classification models",
    "What is the price per watt of the processor?",
    "What is a good recipe for lasagna?",
    "Show me my system information.",
]


def percentiles(samples_ms: Sequence[float]) -> dict[str, float]:
    """Median, p10, p90, p99, mean of a list of milliseconds."""
    arr = np.asarray(samples_ms, dtype=np.float64)
    p10, p50, p90, p99 = np.percentile(arr, [10, 50, 90, 99])
    return {
        "n": len(arr),
        "median": round(float(p50), 3),
        "p10": round(float(p10), 3),
        "p90": round(float(p90), 3),
        "p99": round(float(p99), 3),
        "mean": round(float(arr.mean()), 3),
    }


def bench_embedders(cache_dir: Path, runs: int) -> tuple[dict[str, Any], Embedder]:
    """Start-up and one-query latency of the OpenVINO and torch backends."""
    result: dict[str, Any] = {}
    ov = Embedder(cache_dir)
    result["openvino_start_s"] = round(ov.load_seconds, 3)
    result["openvino_start_from_cache"] = ov.loaded_from_cache
    if not ov.loaded_from_cache:
        again = Embedder(cache_dir)
        result["openvino_start_cached_s"] = round(again.load_seconds, 3)
    torch_embedder = Embedder(cache_dir, backend="torch")
    result["torch_start_s"] = round(torch_embedder.load_seconds, 3)
    a, b = ov.encode([PROBE]), torch_embedder.encode([PROBE])
    result["ov_vs_torch_cosine"] = round(float((a * b).sum()), 6)
    # interleave the two backends so background load affects both alike
    half = max(1, runs // 2)
    ov_ms = time_calls(lambda: ov.encode([PROBE]), half, warmup=5)
    torch_ms = time_calls(lambda: torch_embedder.encode([PROBE]), half, warmup=5)
    ov_ms += time_calls(lambda: ov.encode([PROBE]), runs - half, warmup=1)
    torch_ms += time_calls(lambda: torch_embedder.encode([PROBE]), runs - half, warmup=1)
    result["query_ms"] = {"openvino": percentiles(ov_ms), "torch": percentiles(torch_ms)}
    return result, ov


def bench_index(chunks: list[Chunk], embedder: Embedder, index_dir: Path) -> dict[str, Any]:
    """Forced build and a cached load of the persisted index."""
    report = Retriever.build(chunks, index_dir=index_dir, embedder=embedder)
    start = time.perf_counter()
    loaded = Retriever.load_or_build(chunks, index_dir=index_dir, embedder=embedder)
    load_s = time.perf_counter() - start
    return {
        "chunks": report.chunks,
        "by_kind": report.by_kind,
        "build_s": report.seconds,
        "load_s": round(load_s, 4),
        "load_origin": loaded.origin,
    }


def bench_search(
    chunks: list[Chunk], embedder: Embedder, index_dir: Path, queries: Sequence[str], rounds: int
) -> dict[str, Any]:
    """End-to-end search latency with the query cache off (cold) and on (warm)."""
    result: dict[str, Any] = {}
    for label, cache_size in (("cold", 0), ("warm", 256)):
        retriever = Retriever.load_or_build(
            chunks, index_dir=index_dir, embedder=embedder, query_cache_size=cache_size
        )
        for query in queries:  # warm-up (and, with the cache on, fill it)
            retriever.search(query, k=3)
        samples = []
        for _ in range(rounds):
            for query in queries:
                start = time.perf_counter()
                retriever.search(query, k=3)
                samples.append((time.perf_counter() - start) * 1000)
        result[label] = percentiles(samples)
    return result


def print_table(results: dict[str, Any]) -> None:
    """Human-readable summary."""
    emb, idx, search = results["embedding"], results["index"], results["search"]
    print(f"\n{'measure':38s} {'median':>9s} {'p10':>9s} {'p90':>9s} {'p99':>9s}")
    for name, stats in (
        ("embed 1 query, OpenVINO (ms)", emb["query_ms"]["openvino"]),
        ("embed 1 query, torch (ms)", emb["query_ms"]["torch"]),
        ("search k=3, cold query cache (ms)", search["cold"]),
        ("search k=3, warm query cache (ms)", search["warm"]),
    ):
        print(
            f"{name:38s} {stats['median']:9.2f} {stats['p10']:9.2f} {stats['p90']:9.2f} {stats['p99']:9.2f}"
        )
    cached = emb["openvino_start_from_cache"]
    print(f"\nOpenVINO embedder start: {emb['openvino_start_s']} s (from cache: {cached})")
    if "openvino_start_cached_s" in emb:
        print(f"OpenVINO embedder start from cache: {emb['openvino_start_cached_s']} s")
    print(f"torch embedder start: {emb['torch_start_s']} s; OV vs torch cosine {emb['ov_vs_torch_cosine']}")
    print(f"index: {idx['chunks']} chunks, build {idx['build_s']} s, load {idx['load_s']} s")
    print(f"machine: {results['machine']}")


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the suite, write JSON, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--knowledge", type=Path, action="append", help="knowledge folder (repeatable)")
    parser.add_argument("--runs", type=int, default=50, help="timed single-query encodes per backend")
    parser.add_argument("--rounds", type=int, default=5, help="passes over the query set for search timing")
    parser.add_argument("--cache-dir", type=Path, help="embedder cache (default: the project's cache)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    settings = Settings()
    knowledge_dirs = tuple(args.knowledge or settings.knowledge_dirs)
    chunks = load_knowledge(knowledge_dirs)
    embedding, embedder = bench_embedders(args.cache_dir or settings.embedder_cache_dir, args.runs)
    with tempfile.TemporaryDirectory(prefix="retrieval-bench-") as tmp:
        index_dir = Path(tmp) / "index"
        index = bench_index(chunks, embedder, index_dir)
        search = bench_search(chunks, embedder, index_dir, QUERIES, args.rounds)
    results = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "knowledge": [str(d) for d in knowledge_dirs],
        "queries": len(QUERIES),
        "embedding": embedding,
        "index": index,
        "search": search,
        "machine": machine_info(),
        "median_speedup_ov_vs_torch": round(
            embedding["query_ms"]["torch"]["median"] / embedding["query_ms"]["openvino"]["median"], 2
        ),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2), encoding="utf-8")
    print_table(results)
    print(f"\nwrote {args.output}")
    return results


if __name__ == "__main__":
    main()

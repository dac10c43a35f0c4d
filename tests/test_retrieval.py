"""Retrieval with the real embedding model: ranking, BM25 tokens, persisted index and embedder cache."""

from __future__ import annotations

import json
import logging
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from assistant import retrieval
from assistant.errors import DeviceNotAvailable, RetrievalIndexError
from assistant.knowledge import Chunk
from assistant.retrieval import Embedder, Hit, IndexReport, Retriever, index_key, tokenize

FAQ = "performance-benchmarks-faq.rst"


def _faq(slug: str, title: str, text: str, kind: str = "faq") -> Chunk:
    return Chunk(id=f"{FAQ}#{slug}", title=title, text=text, source=FAQ, kind=kind)


CHUNKS = [
    _faq(
        "updates",
        "How often do performance benchmarks get updated?",
        "New performance benchmarks are typically published on every ``major.minor`` release "
        "of the Intel Distribution of OpenVINO toolkit.",
    ),
    _faq(
        "run-own",
        "How can I run the benchmark results on my own?",
        "All of the performance benchmarks on conventional network models are generated using the "
        "open-source tool called benchmark_app. For LLMs use the OpenVINO GenAI tools/llm_bench.",
    ),
    _faq(
        "latency",
        "How is latency measured?",
        "Latency is measured in synchronous mode: one inference request at a time, so the next "
        "request starts only after the previous one finished. Throughput uses asynchronous requests.",
    ),
    _faq(
        "resnet-50",
        "resnet-50",
        "resnet-50 | PyTorch | classification | input size 224x224",
        kind="row",
    ),
    _faq(
        "precision",
        "Which precisions are benchmarked?",
        "Models are quantized to INT8 with NNCF post-training quantization; FP16 and FP32 results "
        "are listed where noted.",
    ),
    _faq(
        "power",
        "How are performance per watt and per dollar computed?",
        "Efficiency divides throughput by the TDP of the processor; value divides it by the "
        "processor's recommended customer price.",
    ),
]


@pytest.fixture(scope="session")
def embedder(tmp_path_factory: pytest.TempPathFactory) -> Embedder:
    return Embedder(tmp_path_factory.mktemp("embedder"))


@pytest.fixture(scope="session")
def retriever(embedder: Embedder) -> Retriever:
    return Retriever.from_chunks(CHUNKS, embedder)


def test_kept_vectors_are_the_texts_own_and_computed_once(embedder: Embedder) -> None:
    sentences = ["Latency is measured in synchronous mode.", "Throughput is measured in asynchronous mode."]
    first = embedder.encode(sentences, keep=True)
    assert np.allclose(first, embedder.encode(sentences), atol=1e-5)
    computed: list[int] = []
    original = embedder._encoder.encode
    embedder._encoder.encode = lambda texts: computed.append(len(texts)) or original(texts)  # count the work
    try:
        mixed = embedder.encode(["A new question?", sentences[1], sentences[0]], keep=True)
    finally:
        embedder._encoder.encode = original
    assert computed == [1]  # only the text not seen before
    assert np.array_equal(mixed[1:], first[::-1])
    assert np.allclose(mixed[0], embedder.encode(["A new question?"])[0], atol=1e-5)


def _ids(hits: list[Hit]) -> list[str]:
    return [h.chunk.id.split("#")[1] for h in hits]


# ------------------------------------------------------------------------------------------- ranking


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("When are new benchmark numbers released?", "updates"),
        ("Which program should I use to reproduce these results myself?", "run-own"),
        ("Are requests processed one after another when timing a single inference?", "latency"),
        ("What image resolution does ResNet take?", "resnet-50"),
        ("Are the models quantized to 8-bit integers?", "precision"),
        ("How do you calculate efficiency relative to power draw and cost?", "power"),
    ],
)
def test_paraphrased_question_ranks_its_chunk_first(retriever: Retriever, query: str, expected: str) -> None:
    hits = retriever.search(query, k=3)
    assert len(hits) == 3
    assert _ids(hits)[0] == expected
    assert hits[0].score >= hits[1].score >= hits[2].score
    assert hits[0].dense_rank is not None


def test_relevant_chunks_have_higher_similarity_than_unrelated_question(retriever: Retriever) -> None:
    relevant = retriever.search("How is latency measured?", k=1)[0]
    unrelated = retriever.search("What is a good recipe for banana bread?", k=1)[0]
    assert -1.0 <= unrelated.similarity < relevant.similarity <= 1.0001
    assert relevant.similarity > 0.6
    assert unrelated.similarity < 0.3


def test_search_edge_cases(retriever: Retriever) -> None:
    assert retriever.search("   ", k=3) == []
    assert retriever.search("latency", k=0) == []
    assert len(retriever.search("latency", k=50)) == len(CHUNKS)


def test_fused_score_is_weighted_reciprocal_rank(embedder: Embedder) -> None:
    r = Retriever.from_chunks(CHUNKS, embedder, dense_weight=1.0, sparse_weight=0.5)
    hits = r.search("benchmark_app for INT8 models", k=len(CHUNKS))
    assert any(h.sparse_rank for h in hits) and any(h.sparse_rank is None for h in hits)
    for hit in hits:
        expected = (1.0 / (60 + hit.dense_rank) if hit.dense_rank else 0.0) + (
            0.5 / (60 + hit.sparse_rank) if hit.sparse_rank else 0.0
        )
        assert hit.score == pytest.approx(expected)
    assert [h.dense_rank for h in hits if h.sparse_rank is None] == sorted(
        h.dense_rank for h in hits if h.sparse_rank is None
    )


def test_weights_change_fusion(embedder: Embedder) -> None:
    dense_only = Retriever.from_chunks(CHUNKS, embedder, sparse_weight=0.0)
    hits = dense_only.search("benchmark_app", k=len(CHUNKS))
    by_dense = sorted(hits, key=lambda h: h.dense_rank or 99)
    assert [h.chunk.id for h in hits] == [h.chunk.id for h in by_dense]


# ---------------------------------------------------------------------------------------------- BM25


def test_tokenize_keeps_special_tokens() -> None:
    tokens = tokenize("Run ``benchmark_app`` or llm_bench: INT8, 224x224, every major.minor release.")
    for token in ("benchmark_app", "llm_bench", "int8", "224x224", "major.minor"):
        assert token in tokens
    assert "the" not in tokenize("the latency of the model")
    assert tokens == [t.lower() for t in tokens]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("benchmark_app", "run-own"),
        ("224x224", "resnet-50"),
        ("major.minor", "updates"),
        ("INT8", "precision"),
    ],
)
def test_bm25_matches_special_tokens(retriever: Retriever, query: str, expected: str) -> None:
    hits = retriever.search(query, k=len(CHUNKS))
    sparse = [h for h in hits if h.sparse_rank == 1]
    assert len(sparse) == 1
    assert _ids(sparse) == [expected]
    assert _ids(hits)[0] == expected


def test_bm25_gives_no_rank_without_shared_terms(retriever: Retriever) -> None:
    hits = retriever.search("zzzunknownterm", k=len(CHUNKS))
    assert all(h.sparse_rank is None for h in hits)


def test_query_vectors_are_cached(embedder: Embedder) -> None:
    calls: list[list[str]] = []

    class Counting:
        model_id = embedder.model_id
        dimension = embedder.dimension

        def encode(self, texts: list[str]) -> np.ndarray:
            calls.append(list(texts))
            return embedder.encode(texts)

    r = Retriever.from_chunks(CHUNKS, Counting())  # type: ignore[arg-type]
    calls.clear()
    first = r.search("how is latency measured", k=2)
    second = r.search("  how is   latency measured ", k=2)
    assert len(calls) == 1
    assert first == second


def test_concurrent_search_is_consistent(retriever: Retriever, embedder: Embedder) -> None:
    queries = ["latency", "INT8 models", "benchmark_app", "watt", "resnet input"] * 4
    expected = {q: _ids(retriever.search(q, k=3)) for q in set(queries)}
    fresh = Retriever.from_chunks(CHUNKS, embedder)  # empty query cache: threads really encode
    results: list[tuple[str, list[str]]] = []

    def worker(q: str) -> None:
        results.append((q, _ids(fresh.search(q, k=3))))

    threads = [threading.Thread(target=worker, args=(q,)) for q in queries]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == len(queries)
    for q, ids in results:
        assert ids == expected[q]


# -------------------------------------------------------------------------------------- persistence


def test_index_is_built_once_then_loaded(tmp_path: Path, embedder: Embedder) -> None:
    index_dir = tmp_path / "index"
    first = Retriever.load_or_build(CHUNKS, index_dir=index_dir, embedder=embedder)
    assert first.origin == "built"
    manifest = index_dir / "manifest.json"
    mtime = manifest.stat().st_mtime_ns
    second = Retriever.load_or_build(CHUNKS, index_dir=index_dir, embedder=embedder)
    assert second.origin == "loaded"
    assert manifest.stat().st_mtime_ns == mtime
    query = "what tool runs the benchmarks"
    assert _ids(second.search(query)) == _ids(first.search(query))
    assert [h.similarity for h in second.search(query)] == pytest.approx(
        [h.similarity for h in first.search(query)], abs=1e-5
    )


def test_changed_chunk_triggers_rebuild(tmp_path: Path, embedder: Embedder) -> None:
    index_dir = tmp_path / "index"
    Retriever.load_or_build(CHUNKS, index_dir=index_dir, embedder=embedder)
    changed = [*CHUNKS[:-1], _faq("power", CHUNKS[-1].title, "Power draw is measured with a wall meter.")]
    assert index_key(changed, embedder.model_id) != index_key(CHUNKS, embedder.model_id)
    rebuilt = Retriever.load_or_build(changed, index_dir=index_dir, embedder=embedder)
    assert rebuilt.origin == "built"
    assert json.loads((index_dir / "manifest.json").read_text())["key"] == rebuilt.report.key
    assert _ids(rebuilt.search("wall meter", k=1)) == ["power"]
    assert "wall meter" in rebuilt.search("wall meter", k=1)[0].chunk.text
    assert Retriever.load_or_build(changed, index_dir=index_dir, embedder=embedder).origin == "loaded"


@pytest.mark.parametrize("damage", ["truncate-faiss", "bad-chunks-json", "bad-manifest", "delete-bm25"])
def test_corrupt_index_is_rebuilt(
    tmp_path: Path, embedder: Embedder, caplog: pytest.LogCaptureFixture, damage: str
) -> None:
    index_dir = tmp_path / "index"
    original = Retriever.load_or_build(CHUNKS, index_dir=index_dir, embedder=embedder)
    if damage == "truncate-faiss":
        path = index_dir / "dense.faiss"
        path.write_bytes(path.read_bytes()[:100])
    elif damage == "bad-chunks-json":
        (index_dir / "chunks.json").write_text('[{"id": ', encoding="utf-8")
    elif damage == "bad-manifest":
        (index_dir / "manifest.json").write_text("{not json", encoding="utf-8")
    else:
        shutil.rmtree(index_dir / "bm25")
    with caplog.at_level(logging.WARNING, logger="assistant.retrieval"):
        repaired = Retriever.load_or_build(CHUNKS, index_dir=index_dir, embedder=embedder)
    assert repaired.origin == "built"
    assert any("rebuilding" in r.message for r in caplog.records)
    query = "when is a new release benchmarked"
    assert _ids(repaired.search(query)) == _ids(original.search(query))
    assert Retriever.load_or_build(CHUNKS, index_dir=index_dir, embedder=embedder).origin == "loaded"


def test_silently_altered_vectors_are_detected(tmp_path: Path, embedder: Embedder) -> None:
    index_dir = tmp_path / "index"
    Retriever.load_or_build(CHUNKS, index_dir=index_dir, embedder=embedder)
    path = index_dir / "dense.faiss"
    data = bytearray(path.read_bytes())
    data[-4:] = np.float32(7.0).tobytes()  # still a loadable faiss file, but a wrong vector
    path.write_bytes(bytes(data))
    assert Retriever.load_or_build(CHUNKS, index_dir=index_dir, embedder=embedder).origin == "built"


def test_unreadable_faiss_with_matching_checksum_is_rebuilt(tmp_path: Path, embedder: Embedder) -> None:
    index_dir = tmp_path / "index"
    Retriever.load_or_build(CHUNKS, index_dir=index_dir, embedder=embedder)
    path = index_dir / "dense.faiss"
    path.write_bytes(path.read_bytes()[:100])
    manifest_path = index_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["checksums"]["dense.faiss"] = retrieval._sha256_file(path)  # checksum no longer protects
    manifest_path.write_text(json.dumps(manifest))
    assert Retriever.load_or_build(CHUNKS, index_dir=index_dir, embedder=embedder).origin == "built"


def test_failed_write_keeps_previous_index(
    tmp_path: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    index_dir = tmp_path / "index"
    Retriever.load_or_build(CHUNKS, index_dir=index_dir, embedder=embedder)
    old_key = json.loads((index_dir / "manifest.json").read_text())["key"]

    def disk_full(_: Path) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(retrieval, "_fsync_tree", disk_full)
    changed = [*CHUNKS, _faq("extra", "Extra", "An extra chunk about memory bandwidth.")]
    with pytest.raises(RetrievalIndexError):
        Retriever.build(changed, index_dir=index_dir, embedder=embedder)
    in_memory = Retriever.load_or_build(changed, index_dir=index_dir, embedder=embedder)
    assert in_memory.origin == "built"  # usable, only not persisted
    assert _ids(in_memory.search("memory bandwidth", k=1)) == ["extra"]
    monkeypatch.undo()
    assert json.loads((index_dir / "manifest.json").read_text())["key"] == old_key
    assert Retriever.load_or_build(CHUNKS, index_dir=index_dir, embedder=embedder).origin == "loaded"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index"]  # no temp dirs left behind


def test_build_report(tmp_path: Path, embedder: Embedder) -> None:
    index_dir = tmp_path / "index"
    report = Retriever.build(CHUNKS, index_dir=index_dir, embedder=embedder)
    assert isinstance(report, IndexReport)
    assert report.chunks == len(CHUNKS)
    assert report.by_kind == {"faq": 5, "row": 1}
    assert report.files == {FAQ: len(CHUNKS)}
    assert report.seconds > 0
    assert report.index_path == index_dir
    assert json.loads(json.dumps(report.to_dict()))["index_path"] == str(index_dir)
    assert Retriever.build(CHUNKS, index_dir=index_dir, embedder=embedder).origin == "built"  # forced
    assert Retriever.load_or_build(CHUNKS, index_dir=index_dir, embedder=embedder).origin == "loaded"


def test_empty_chunk_list_is_an_error(embedder: Embedder) -> None:
    with pytest.raises(RetrievalIndexError):
        Retriever.from_chunks([], embedder)


# ----------------------------------------------------------------------------------------- embedder


TEXTS = ["How is latency measured?", "int8", "", "benchmark_app " * 300, "Where are the models published?"]


def test_embeddings_are_normalised_float32(embedder: Embedder) -> None:
    vectors = embedder.encode(TEXTS)
    assert vectors.dtype == np.float32
    assert vectors.shape == (len(TEXTS), embedder.dimension) == (len(TEXTS), 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert embedder.encode([]).shape == (0, 384)
    single = np.vstack([embedder.encode([t]) for t in TEXTS])
    assert np.abs(single - vectors).max() < 1e-3  # batching and padding do not change results


def test_openvino_export_is_cached(embedder: Embedder) -> None:
    assert (embedder.export_dir / "openvino_model.xml").is_file()
    again = Embedder(embedder.cache_dir)
    assert again.loaded_from_cache
    assert again.export_dir == embedder.export_dir
    if not embedder.loaded_from_cache:  # the fixture exported: loading the IR must be faster
        assert again.load_seconds < embedder.load_seconds
    assert np.abs(again.encode(TEXTS) - embedder.encode(TEXTS)).max() < 1e-5


def test_openvino_matches_torch_backend(embedder: Embedder) -> None:
    reference = Embedder(embedder.cache_dir, backend="torch")
    ov, pt = embedder.encode(TEXTS), reference.encode(TEXTS)
    cosines = (ov * pt).sum(axis=1)
    assert cosines.min() > 0.999
    assert np.abs(ov - pt).max() < 5e-3


def test_broken_export_cache_is_replaced(embedder: Embedder, tmp_path: Path) -> None:
    cache = tmp_path / "embedder"
    shutil.copytree(embedder.cache_dir, cache)
    copy = Embedder(cache)
    assert copy.loaded_from_cache
    (copy.export_dir / "openvino_model.bin").write_bytes(b"\0" * 10)
    repaired = Embedder(cache)
    assert not repaired.loaded_from_cache
    assert np.abs(repaired.encode(TEXTS) - embedder.encode(TEXTS)).max() < 1e-5
    assert Embedder(cache).loaded_from_cache
    assert [p.name for p in cache.iterdir()] == [copy.export_dir.name]


def test_unwritable_cache_still_gives_an_embedder(embedder: Embedder, tmp_path: Path) -> None:
    not_a_dir = tmp_path / "cache-is-a-file"
    not_a_dir.write_text("x")
    fallback = Embedder(not_a_dir)
    assert not fallback.loaded_from_cache
    assert np.abs(fallback.encode(TEXTS) - embedder.encode(TEXTS)).max() < 1e-5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache-is-a-file"]


def test_missing_device_is_a_clear_error(embedder: Embedder) -> None:
    with pytest.raises(DeviceNotAvailable):
        Embedder(embedder.cache_dir, device="NO_SUCH_DEVICE")


def test_concurrent_encode(embedder: Embedder) -> None:
    expected = embedder.encode(TEXTS)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(3):
                assert np.abs(embedder.encode(TEXTS) - expected).max() < 1e-5
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_encode_rejects_a_bare_string(embedder: Embedder) -> None:
    with pytest.raises(TypeError):
        embedder.encode("a string")  # type: ignore[arg-type]

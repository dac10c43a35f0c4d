"""A child process for tests/test_faults.py: writes the retrieval index or the history, and stops at a chosen
point (printing PAUSED) so that the test can SIGKILL it exactly there; or loops writing (printing LOOPING)
so that the test can kill it at a random moment.

    python tests/fault_worker.py index POINT INDEX_DIR EMBEDDER_CACHE
    python tests/fault_worker.py history POINT DB_PATH
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from assistant import retrieval
from assistant.config import PROJECT_ROOT
from assistant.history import History, record_run
from assistant.knowledge import Chunk, load_knowledge

LOOP_LIMIT_S = 60  # a looping worker stops by itself if nobody kills it


def pause() -> None:
    print("PAUSED", flush=True)
    time.sleep(LOOP_LIMIT_S)
    sys.exit(3)  # never reached when the test kills the process


def chunk_sets() -> tuple[list[Chunk], list[Chunk]]:
    """The old chunks (the FAQ) and the new ones (the FAQ plus one extra passage)."""
    old = load_knowledge([PROJECT_ROOT / "knowledge"])
    extra = Chunk(id="extra.md#memory", title="Memory bandwidth", source="extra.md", kind="section",
                  text="Memory bandwidth limits the throughput of large language models on CPUs.")
    return old, [*old, extra]


def index(point: str, index_dir: Path, embedder_cache: Path) -> None:
    embedder = retrieval.Embedder(embedder_cache)
    old, new = chunk_sets()
    if point == "loop":
        built = []
        for chunks in (new, old):
            dense, bm25 = retrieval._build_indexes(chunks, embedder)
            key = retrieval.index_key(chunks, embedder.model_id)
            built.append((key, chunks, dense, bm25, retrieval._report(chunks, 0.0, index_dir, key, "built")))
        print("LOOPING", flush=True)
        deadline = time.monotonic() + LOOP_LIMIT_S
        while time.monotonic() < deadline:
            for key, chunks, dense, bm25, report in built:
                retrieval._save_indexes(index_dir, key, chunks, embedder, dense, bm25, report)
        return
    import faiss

    if point == "dense":  # half of dense.faiss is on disk
        write_index = faiss.write_index

        def half_written(index_object, path):
            write_index(index_object, path)
            data = Path(path).read_bytes()
            Path(path).write_bytes(data[: len(data) // 2])
            pause()

        faiss.write_index = half_written
    elif point == "checksums":  # every file written but the manifest
        retrieval._sha256_file = lambda path: pause()
    elif point == "fsync":  # manifest written, not yet published
        retrieval._fsync_tree = lambda root: pause()
    elif point == "between-renames":  # the old index moved aside, the new one not yet in place
        rename = os.rename

        def rename_then_pause(src, dst):
            rename(src, dst)
            if Path(src) == index_dir:
                pause()

        retrieval.os.rename = rename_then_pause
    elif point == "cleanup":  # the new index published, the old one not yet deleted
        rmtree = shutil.rmtree

        def pause_before_removing_old(path, *args, **kwargs):
            if ".old-" in str(path):
                pause()
            return rmtree(path, *args, **kwargs)

        retrieval.shutil.rmtree = pause_before_removing_old
    else:
        raise SystemExit(f"unknown point {point}")
    retrieval.Retriever.build(new, index_dir=index_dir, embedder=embedder)
    print("FINISHED", flush=True)


def result(number: int) -> dict:
    """A benchmark result with a large payload and its own checksum (a torn row would not match)."""
    payload = f"run {number} " * 20_000
    return {"model": "resnet-50", "device": "CPU", "hint": "latency", "precision": "fp32",
            "latency_ms": {"median": 9.3, "avg": 9.5, "min": 8.9, "max": 12.0}, "throughput_fps": 104.0,
            "payload": payload, "sha256": hashlib.sha256(payload.encode()).hexdigest(), "number": number}


def history(point: str, db: Path) -> None:
    config = {"model": "resnet-50", "device": "CPU", "hint": "latency", "precision": "fp32", "seconds": 10}
    if point == "loop":
        print("LOOPING", flush=True)
        deadline, number = time.monotonic() + LOOP_LIMIT_S, len(History(db).list(limit=0))
        while time.monotonic() < deadline:
            number += 1
            record_run(db, "run_benchmark", config, result(number))
        return
    if point != "uncommitted":
        raise SystemExit(f"unknown point {point}")
    committed = int(sys.argv[4])
    for number in range(1, committed + 1):
        record_run(db, "run_benchmark", config, result(number))
    connect = History._connect

    class PauseBeforeCommit:
        """The connection as `with conn:` sees it: the INSERT runs, then the process stops before COMMIT."""

        def __init__(self, conn):
            self._conn = conn

        def __getattr__(self, name):
            return getattr(self._conn, name)

        def __enter__(self):
            self._conn.__enter__()
            return self

        def __exit__(self, *exc):
            if exc[0] is None:
                assert self._conn.in_transaction
                pause()
            return self._conn.__exit__(*exc)

    def pausing_connect(self):
        context = connect(self)
        conn = context.__enter__()
        try:
            yield PauseBeforeCommit(conn)
        finally:
            context.__exit__(None, None, None)

    import contextlib

    History._connect = contextlib.contextmanager(pausing_connect)
    record_run(db, "run_benchmark", config, result(committed + 1))
    print("FINISHED", flush=True)


if __name__ == "__main__":
    kind, point, target = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    if kind == "index":
        index(point, target, Path(sys.argv[4]))
    else:
        history(point, target)
    print(json.dumps({"done": True}), flush=True)

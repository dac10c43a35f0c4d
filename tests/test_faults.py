"""Injected faults: SIGKILL while the index or a history row is written, a hanging benchmark_app, missing or
truncated model files, and a full disk (ENOSPC) while the embedder export or the index is cached.

The kills happen in child processes (tests/fault_worker.py) that stop at a chosen point, or at a random
moment while they loop writing; the checks then run here, as a restarted process would.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from live_server import SHARED_EMBEDDER, LiveServer, web_settings
from spies import snapshot

from assistant import retrieval
from assistant.config import PROJECT_ROOT, Settings
from assistant.core import Assistant
from assistant.errors import ModelCorrupt, ModelError, ModelNotFound, RetrievalIndexError, ToolExecutionError
from assistant.history import History
from assistant.knowledge import Chunk
from assistant.models import get_entry, resolve_llm_path
from assistant.portal import PortalSettings
from assistant.retrieval import Embedder, Retriever
from assistant.server import create_app
from assistant.tools import benchmark
from assistant.tools.base import ToolContext

WORKER = Path(__file__).with_name("fault_worker.py")
FAULTS = {"sigkill_index": 0, "sigkill_history": 0, "hang": 0, "model_file": 0, "enospc": 0}


@pytest.fixture(scope="module", autouse=True)
def report_faults() -> Iterator[None]:
    yield
    print(f"\nfaults injected: {FAULTS} (total {sum(FAULTS.values())})")


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    SHARED_EMBEDDER.mkdir(parents=True, exist_ok=True)
    return Embedder(SHARED_EMBEDDER)


@pytest.fixture(scope="module")
def chunk_sets() -> tuple[list[Chunk], list[Chunk]]:
    sys.path.insert(0, str(WORKER.parent))
    import fault_worker

    return fault_worker.chunk_sets()


def start_worker(*args: str) -> subprocess.Popen:
    stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed by kill_at; a file, so a chatty worker never blocks
    proc = subprocess.Popen([sys.executable, str(WORKER), *args], stdout=subprocess.PIPE, stderr=stderr,
                            text=True, cwd=PROJECT_ROOT)
    proc.stderr_file = stderr
    return proc


def kill_at(proc: subprocess.Popen, marker: str, *, delay: float = 0.0, timeout: float = 60) -> None:
    """Wait for `marker` on the worker's stdout (then `delay` seconds), SIGKILL it, reap it."""
    seen = threading.Event()

    def read() -> None:
        for line in proc.stdout:
            if line.strip() == marker:
                seen.set()
                return

    def stderr() -> str:
        proc.stderr_file.seek(0)
        return proc.stderr_file.read().decode("utf-8", "replace")[-2000:]

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert seen.wait(timeout), f"the worker never printed {marker}: {stderr()}"
        time.sleep(delay)
        assert proc.poll() is None, f"the worker ended before it was killed: {stderr()}"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(30)
        reader.join(10)
        proc.stdout.close()
        proc.stderr_file.close()
    assert proc.returncode == -signal.SIGKILL


# -- SIGKILL while the index is written ------------------------------------------------------------------

def check_index_after_restart(index_dir: Path, chunk_sets, embedder: Embedder) -> str:
    """The index at index_dir is complete (old or new, checksums valid), loads without a rebuild, answers."""
    old, new = chunk_sets
    keys = {retrieval.index_key(old, embedder.model_id): ("old", old),
            retrieval.index_key(new, embedder.model_id): ("new", new)}
    retrieval._recover_interrupted_publish(index_dir)  # what the next start does first (load_or_build)
    manifest = json.loads((index_dir / "manifest.json").read_text())
    assert manifest["key"] in keys, "the index is neither the old nor the new one"
    retrieval._verify_checksums(index_dir, manifest)
    version, chunks = keys[manifest["key"]]
    retriever = Retriever.load_or_build(chunks, index_dir=index_dir, embedder=embedder)
    assert retriever.origin == "loaded", "a complete index had to be rebuilt"
    assert retriever.search("How is latency measured?", k=3)
    if version == "new":
        assert retriever.search("memory bandwidth of large language models", k=1)[0].chunk.id == "extra.md#memory"
    return version


@pytest.mark.parametrize(("point", "expected"), [
    ("dense", "old"),  # half of dense.faiss written
    ("checksums", "old"),  # all files but the manifest written
    ("fsync", "old"),  # manifest written, not published
    ("between-renames", "old"),  # old moved aside, new not yet in place: restored on the next start
    ("cleanup", "new"),  # new published, old not yet removed
])
def test_sigkill_while_the_index_is_written(tmp_path: Path, chunk_sets, embedder: Embedder, point: str,
                                            expected: str) -> None:
    index_dir = tmp_path / "index"
    Retriever.build(chunk_sets[0], index_dir=index_dir, embedder=embedder)  # the old index
    kill_at(start_worker("index", point, str(index_dir), str(SHARED_EMBEDDER)), "PAUSED")
    FAULTS["sigkill_index"] += 1
    assert check_index_after_restart(index_dir, chunk_sets, embedder) == expected
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "index"]
    assert all(name.startswith((".index.tmp-", ".index.old-")) for name in leftovers), leftovers


def test_sigkill_at_random_moments_while_the_index_is_rewritten(tmp_path: Path, chunk_sets,
                                                                embedder: Embedder) -> None:
    index_dir = tmp_path / "index"
    Retriever.build(chunk_sets[0], index_dir=index_dir, embedder=embedder)
    rng = random.Random(int(os.environ.get("OVPERF_FAULT_SEED", "7")))
    versions = []
    for _ in range(3):
        kill_at(start_worker("index", "loop", str(index_dir), str(SHARED_EMBEDDER)), "LOOPING",
                delay=rng.uniform(0.05, 0.8))
        FAULTS["sigkill_index"] += 1
        versions.append(check_index_after_restart(index_dir, chunk_sets, embedder))
    assert set(versions) <= {"old", "new"}


# -- SIGKILL while a benchmark result is stored -------------------------------------------------------------

def check_history(db: Path, *, at_least: int = 0) -> list[dict]:
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()
    runs = History(db).list(limit=0)
    for run in runs:  # every stored row is whole: its payload matches its checksum
        result = run["result"]
        assert hashlib.sha256(result["payload"].encode()).hexdigest() == result["sha256"]
        assert run["model"] == "resnet-50" and run["config"]["seconds"] == 10
    numbers = sorted(run["result"]["number"] for run in runs)
    assert numbers == list(range(1, len(runs) + 1)), "a row is missing in the middle"
    assert len(runs) >= at_least
    return runs


def test_sigkill_before_the_history_commit_leaves_no_half_row(tmp_path: Path) -> None:
    db = tmp_path / "history.sqlite"
    kill_at(start_worker("history", "uncommitted", str(db), "3"), "PAUSED")
    FAULTS["sigkill_history"] += 1
    runs = check_history(db)
    assert len(runs) == 3, "the uncommitted row is visible after the restart"
    assert History(db).add("run_benchmark", {"model": "resnet-50"}, {"throughput_fps": 1.0}) == 4


def test_sigkill_at_random_moments_while_results_are_stored(tmp_path: Path) -> None:
    db = tmp_path / "history.sqlite"
    rng = random.Random(int(os.environ.get("OVPERF_FAULT_SEED", "7")))
    stored = 0
    for _ in range(3):  # each worker continues the numbering where the database stands
        kill_at(start_worker("history", "loop", str(db)), "LOOPING", delay=rng.uniform(0.1, 0.6))
        FAULTS["sigkill_history"] += 1
        stored = len(check_history(db, at_least=stored))
    assert stored > 0


# -- a benchmark that hangs ------------------------------------------------------------------------------------

HANGING_BENCHMARK_APP = textwrap.dedent("""\
    #!{python}
    import os, subprocess, sys, time
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    with open({pids!r}, "w") as f:
        f.write(f"{{os.getpid()}} {{child.pid}} {{os.getpgid(0)}}")
    print("[Step 1/11] Parsing input parameters", flush=True)
    print("[Step 10/11] Measuring performance", flush=True)
    time.sleep(600)
""")


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_a_hanging_benchmark_is_killed_at_its_time_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    (allowed / "model.xml").write_text("<net/>")
    (allowed / "model.bin").write_bytes(b"\0")
    pids = tmp_path / "pids"
    fake = tmp_path / "benchmark_app"
    fake.write_text(HANGING_BENCHMARK_APP.format(python=sys.executable, pids=str(pids)))
    fake.chmod(0o755)
    monkeypatch.setattr(benchmark, "benchmark_app_path", lambda: fake)
    settings = Settings(models_dir=tmp_path / "models", cache_dir=tmp_path / "cache", bench_allowed_dirs=(allowed,),
                        history_db=tmp_path / "cache" / "history.sqlite", tool_timeout_s=3)
    started = time.monotonic()
    with pytest.raises(ToolExecutionError) as info:
        benchmark.run_benchmark({"model": str(allowed / "model.xml"), "seconds": 1}, ToolContext(settings=settings))
    elapsed = time.monotonic() - started
    FAULTS["hang"] += 1
    assert "timed out after" in info.value.message and "was stopped" in info.value.message and info.value.hint
    assert elapsed < 10
    app_pid, child_pid, group = map(int, pids.read_text().split())
    assert group == app_pid  # benchmark_app led its own process group ...
    deadline = time.monotonic() + 5
    while not (_gone(app_pid) and _gone(child_pid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(app_pid) and _gone(child_pid), "the process group outlived the time limit"  # ... all killed
    assert History(settings.history_db).list() == []  # a killed run is not stored as a result
    # the benchmark slot was released: the next run is not "busy" (it times out the same way)
    with pytest.raises(ToolExecutionError, match="timed out"):
        benchmark.run_benchmark({"model": str(allowed / "model.xml"), "seconds": 1}, ToolContext(settings=settings))
    FAULTS["hang"] += 1


# -- missing or truncated model files ---------------------------------------------------------------------------

def _models_settings(tmp_path: Path) -> Settings:
    return Settings(models_dir=tmp_path / "models", cache_dir=tmp_path / "cache", auto_pull=False,
                    history_db=tmp_path / "cache" / "history.sqlite")


def test_a_missing_model_file_names_the_pull_command(tmp_path: Path) -> None:
    FAULTS["model_file"] += 1
    with pytest.raises(ModelNotFound) as info:
        resolve_llm_path(_models_settings(tmp_path))
    assert "ovperf models pull" in info.value.hint


@pytest.mark.parametrize("damage", ["truncated", "empty", "same size, wrong bytes"])
def test_a_damaged_model_file_gives_the_re_pull_instruction(tmp_path: Path, damage: str) -> None:
    settings = _models_settings(tmp_path)
    entry = get_entry()
    path = entry.path(settings)
    path.parent.mkdir(parents=True)
    real = PROJECT_ROOT / "models" / entry.filename
    head = real.open("rb").read(1 << 20) if real.is_file() else b"GGUF" + b"\0" * ((1 << 20) - 4)
    if damage == "truncated":
        path.write_bytes(head)
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        with path.open("wb") as handle:
            handle.write(head)
            handle.truncate(entry.size)  # right size, zeros after the first MiB
    FAULTS["model_file"] += 1
    with pytest.raises(ModelCorrupt) as info:
        resolve_llm_path(settings)
    assert "ovperf models pull" in info.value.hint and f"Delete {path}" in info.value.hint


def test_the_server_reports_a_missing_model_with_the_pull_command(tmp_path: Path) -> None:
    """Health is degraded; catalog answers work; a generated answer is a 503 whose hint says what to run."""
    settings = web_settings(tmp_path, models_dir=tmp_path / "models", auto_pull=False)
    app = create_app(settings, portal=PortalSettings(rate_limit_per_minute=0), preload_model=True, ui=False)
    FAULTS["model_file"] += 1
    with LiveServer(app) as server:
        deadline = time.monotonic() + 60
        while (health := httpx.get(f"{server.url}/healthz").json())["model"]["state"] == "loading":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert health["status"] == "degraded" and "models pull" in health["model"]["error"]["hint"]
        catalog = httpx.post(f"{server.url}/api/ask", json={"question": "What is the input size of resnet-50?"})
        assert catalog.status_code == 200 and "224x224" in catalog.json()["answer"]
        faq = httpx.post(f"{server.url}/api/ask", json={"question": "How is latency measured?"})
        assert faq.status_code == 503 and "models pull" in faq.json()["hint"]


# -- a full disk while caching -----------------------------------------------------------------------------------

def _shared_export() -> Path:
    exports = sorted(SHARED_EMBEDDER.glob("all-MiniLM-L6-v2-ov-*"))
    assert exports, "the shared embedder export is missing (the embedder fixture creates it)"
    return exports[0]


def _fake_export(fail_under: Path | None, calls: list[Path]):
    """An `_export_openvino` that copies the real export, but runs out of space midway under `fail_under`."""
    source = _shared_export()

    def export(model_dir: Path, target: Path) -> None:
        calls.append(target)
        files = sorted(p for p in source.iterdir() if p.is_file())
        for number, file in enumerate(files):
            if fail_under is not None and target.resolve().is_relative_to(fail_under.resolve()) \
                    and number == len(files) // 2:
                data = file.read_bytes()
                (target / file.name).write_bytes(data[: len(data) // 3])
                raise OSError(errno.ENOSPC, "No space left on device", str(target / file.name))
            shutil.copy2(file, target / file.name)

    return export


def test_full_disk_while_exporting_the_embedder_keeps_the_previous_cache(
        tmp_path: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "embedder"
    cache.mkdir()
    previous = cache / "all-MiniLM-L6-v2-ov-0000000000000000"  # the export of an older version
    shutil.copytree(_shared_export(), previous)
    before = snapshot(previous)
    calls: list[Path] = []
    monkeypatch.setattr(retrieval, "_export_openvino", _fake_export(cache, calls))
    FAULTS["enospc"] += 1
    degraded = Embedder(cache)  # the cache write fails midway; a temporary export serves this process
    assert len(calls) == 2 and not calls[1].resolve().is_relative_to(cache.resolve())
    assert not degraded.loaded_from_cache
    sentence = ["How is latency measured?"]
    assert float(degraded.encode(sentence)[0] @ embedder.encode(sentence)[0]) > 0.999
    assert snapshot(previous) == before  # the previous cache is untouched ...
    assert sorted(p.name for p in cache.iterdir()) == [previous.name]  # ... and nothing half-written is left
    # ... and usable: the older export still loads and embeds like the current one
    old = retrieval._OpenVINOEncoder(previous, "CPU")
    assert old.encode(sentence).shape == (1, embedder.dimension)
    # once there is room again, the next start caches the export, and the one after loads it
    monkeypatch.setattr(retrieval, "_export_openvino", _fake_export(None, calls))
    assert not Embedder(cache).loaded_from_cache
    assert Embedder(cache).loaded_from_cache


def test_full_disk_does_not_matter_when_the_cache_is_valid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "embedder"
    cache.mkdir()
    shutil.copytree(_shared_export(), cache / _shared_export().name)
    calls: list[Path] = []
    monkeypatch.setattr(retrieval, "_export_openvino", _fake_export(Path("/"), calls))  # every write fails
    FAULTS["enospc"] += 1
    assert Embedder(cache).loaded_from_cache and calls == []


def test_full_disk_everywhere_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Path] = []
    monkeypatch.setattr(retrieval, "_export_openvino", _fake_export(Path("/"), calls))
    FAULTS["enospc"] += 1
    with pytest.raises(ModelError) as info:
        Embedder(tmp_path / "embedder")
    assert "No space left" in info.value.message and "Free disk space" in info.value.hint
    assert [p.name for p in (tmp_path / "embedder").iterdir()] == []


def test_full_disk_while_writing_the_index_keeps_the_previous_index(
        tmp_path: Path, chunk_sets, embedder: Embedder, monkeypatch: pytest.MonkeyPatch) -> None:
    old, new = chunk_sets
    index_dir = tmp_path / "index"
    Retriever.build(old, index_dir=index_dir, embedder=embedder)
    before = snapshot(index_dir)
    import bm25s

    def save_then_run_out_of_space(self, path, **kwargs):
        Path(path).mkdir(parents=True, exist_ok=True)
        (Path(path) / "params.index.json").write_text('{"k1": 1.')
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(bm25s.BM25, "save", save_then_run_out_of_space)
    FAULTS["enospc"] += 1
    with pytest.raises(RetrievalIndexError, match="No space left"):
        Retriever.build(new, index_dir=index_dir, embedder=embedder)
    in_memory = Retriever.load_or_build(new, index_dir=index_dir, embedder=embedder)  # serves, not persisted
    assert in_memory.search("memory bandwidth of large language models", k=1)[0].chunk.id == "extra.md#memory"
    monkeypatch.undo()
    assert snapshot(index_dir) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index"]
    assert Retriever.load_or_build(old, index_dir=index_dir, embedder=embedder).origin == "loaded"


def test_an_assistant_starts_after_an_interrupted_index_publish(tmp_path: Path, embedder: Embedder) -> None:
    """End to end: the index folder was moved aside by a killed writer; the next Assistant restores and uses it."""
    settings = web_settings(tmp_path)
    Assistant.create(settings, llm=object())  # builds and persists the index
    aside = settings.index_dir.parent / ".index.old-deadbeef"
    os.rename(settings.index_dir, aside)
    FAULTS["sigkill_index"] += 1
    assistant = Assistant.create(settings, llm=object())
    assert assistant.retriever.origin == "loaded" and not aside.exists()
    answer = assistant.ask("What is the input size of resnet-50?")
    assert "224x224" in answer.answer

"""The benchmark history store: persistence across processes, exports, corruption."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from assistant.config import PROJECT_ROOT
from assistant.history import History, HistoryError


def _result(fps: float, median: float) -> dict:
    return {"model": "resnet-50", "device": "CPU", "hint": "latency", "precision": "fp32",
            "throughput_fps": fps,
            "latency_ms": {"median": median, "avg": median, "min": median, "max": median},
            "command": ["benchmark_app", "-m", "model.xml"]}


def test_add_then_list_returns_config_and_result(tmp_path: Path) -> None:
    store = History(tmp_path / "h.sqlite")
    config = {"model": "resnet50", "device": "CPU", "hint": "latency", "precision": "fp32", "seconds": 5}
    run_id = store.add("run_benchmark", config, _result(100.5, 9.25))
    [row] = store.list()
    assert row["id"] == run_id
    assert row["kind"] == "run_benchmark"
    assert row["config"] == config
    assert row["result"] == _result(100.5, 9.25)
    # the columns come from the result where it has them (canonical catalog name)
    columns = (row["model"], row["device"], row["hint"], row["precision"])
    assert columns == ("resnet-50", "CPU", "latency", "fp32")
    assert row["created_at"]


def test_list_is_newest_first_with_limit_and_kind(tmp_path: Path) -> None:
    store = History(tmp_path / "h.sqlite")
    ids = [store.add("run_benchmark", {"i": i}, _result(i, i)) for i in range(5)]
    llm_id = store.add("benchmark_llm", {"model": "smollm2"}, {"tokens_per_s": 90.0})
    assert [r["id"] for r in store.list()] == [llm_id, *reversed(ids)]
    assert [r["id"] for r in store.list(limit=2)] == [llm_id, ids[-1]]
    assert [r["id"] for r in store.list(kind="benchmark_llm")] == [llm_id]
    assert len(store.list(kind="run_benchmark", limit=0)) == 5


def test_unknown_kind_and_format_are_rejected(tmp_path: Path) -> None:
    store = History(tmp_path / "h.sqlite")
    with pytest.raises(HistoryError):
        store.add("rm -rf", {}, {})
    with pytest.raises(HistoryError):
        store.list(kind="nope")
    with pytest.raises(HistoryError) as info:
        store.export("xml")
    assert "csv" in str(info.value)


def test_uses_wal_journal(tmp_path: Path) -> None:
    History(tmp_path / "h.sqlite")
    with sqlite3.connect(tmp_path / "h.sqlite") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


_WRITE = """
import json, sys
from assistant.history import History
store = History(sys.argv[1])
ids = [store.add("run_benchmark", {"seconds": i}, {"model": "mobilenet-v2", "throughput_fps": 10.0 * i})
       for i in (1, 2, 3)]
print(json.dumps(ids))
"""
_READ = """
import json, sys
from assistant.history import History
print(json.dumps(History(sys.argv[1]).list()))
"""


def _python(code: str, *args: str) -> str:
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          cwd=PROJECT_ROOT, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_survives_process_restart(tmp_path: Path) -> None:
    db = tmp_path / "persist" / "history.sqlite"
    ids = json.loads(_python(_WRITE, str(db)))
    rows = json.loads(_python(_READ, str(db)))
    assert [r["id"] for r in rows] == list(reversed(ids))
    assert [r["config"]["seconds"] for r in rows] == [3, 2, 1]
    assert [r["result"]["throughput_fps"] for r in rows] == [30.0, 20.0, 10.0]


def test_export_json_and_csv(tmp_path: Path) -> None:
    store = History(tmp_path / "h.sqlite")
    first = store.add("run_benchmark", {"model": "resnet-50"}, _result(101.0, 9.5))
    second = store.add("benchmark_llm", {"model": "smollm2"}, {"model": "smollm2", "tokens_per_s": 88.0})

    exported = json.loads(store.export("json"))
    assert [r["id"] for r in exported] == [first, second]  # oldest first
    assert exported[0]["result"]["latency_ms"]["median"] == 9.5

    rows = list(csv.DictReader(io.StringIO(store.export("csv"))))
    assert [int(r["id"]) for r in rows] == [first, second]
    assert float(rows[0]["throughput_fps"]) == 101.0
    assert float(rows[0]["latency_median_ms"]) == 9.5
    assert rows[1]["throughput_fps"] == ""
    assert json.loads(rows[1]["result"])["tokens_per_s"] == 88.0
    assert json.loads(rows[0]["config"]) == {"model": "resnet-50"}


def test_empty_exports(tmp_path: Path) -> None:
    store = History(tmp_path / "h.sqlite")
    assert json.loads(store.export("json")) == []
    assert list(csv.DictReader(io.StringIO(store.export("csv")))) == []


def test_corrupt_file_is_an_error_and_left_untouched(tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite"
    garbage = b"this is not a database\x00" * 200
    db.write_bytes(garbage)
    with pytest.raises(HistoryError) as info:
        History(db)
    assert str(db) in info.value.message
    assert info.value.hint
    assert db.read_bytes() == garbage


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    store = History(tmp_path / "h.sqlite")
    errors: list[BaseException] = []

    def write(worker: int) -> None:
        try:
            for i in range(20):
                History(tmp_path / "h.sqlite").add("run_benchmark", {"worker": worker, "i": i}, {"ok": True})
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    rows = store.list(limit=0)
    assert len(rows) == 80
    assert len({r["id"] for r in rows}) == 80
    written = {(r["config"]["worker"], r["config"]["i"]) for r in rows}
    assert written == {(w, i) for w in range(4) for i in range(20)}


def test_record_run_reports_a_broken_database_in_the_result(tmp_path):
    from assistant.history import record_run

    broken = tmp_path / "history.sqlite"
    broken.write_bytes(b"this is not a database" * 100)
    result: dict = {"throughput_fps": 1.0}
    record_run(broken, "run_benchmark", {"model": "resnet-50"}, result)
    assert "history_error" in result and "history_id" not in result
    assert broken.read_bytes().startswith(b"this is not a database"), "the broken file must be left untouched"


def test_the_llm_benchmark_waits_for_no_one_while_a_benchmark_holds_the_slot(tmp_path):
    from assistant.config import Settings
    from assistant.errors import ToolBusy
    from assistant.tools.base import ToolContext
    from assistant.tools.llm_bench import make_benchmark_llm_tool
    from assistant.tools.slot import exclusive

    settings = Settings(cache_dir=tmp_path, history_db=tmp_path / "h.sqlite", auto_pull=False)
    tool = make_benchmark_llm_tool(get_llm=lambda: None)
    arguments = tool.validate({"iterations": 1}, settings)
    with exclusive(settings), pytest.raises(ToolBusy, match="already running"):
        tool.function(arguments, ToolContext(settings=settings))

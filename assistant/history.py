"""SQLite store of tool runs (benchmarks): full configuration and result of every run.

One short transaction per insert in WAL mode, so a crash never leaves half a row,
and readers (the web UI, `ovperf history`) do not block a running benchmark.
A file that is not a valid database raises `HistoryError`; it is never replaced.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from assistant.errors import AssistantError

KINDS = ("run_benchmark", "benchmark_llm", "benchmark_diffusion")
EXPORT_FORMATS = ("json", "csv")
_COLUMNS = ("id", "kind", "created_at", "model", "device", "hint", "precision")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    created_at TEXT NOT NULL,
    model TEXT,
    device TEXT,
    hint TEXT,
    precision TEXT,
    config TEXT NOT NULL,
    result TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_kind_created ON runs (kind, created_at);
"""


class HistoryError(AssistantError):
    """The history database cannot be used (corrupt, unreadable) or a request to it is invalid."""


class History:
    """Benchmark history in one SQLite file; safe to use from several threads and processes."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as conn:
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.executescript(_SCHEMA)
                status = conn.execute("PRAGMA quick_check").fetchone()[0]
            except sqlite3.DatabaseError as exc:
                raise self._corrupt(exc) from exc
            if status != "ok":
                raise self._corrupt(status)

    def add(self, kind: str, config: Mapping[str, Any], result: Mapping[str, Any]) -> int:
        """Store one run (one transaction) and return its id."""
        if kind not in KINDS:
            raise HistoryError(f"unknown run kind {kind!r}", hint=f"Kinds: {', '.join(KINDS)}")
        merged = {**config, **{k: v for k, v in result.items() if k in _COLUMNS}}
        row = (kind, datetime.now(UTC).isoformat(timespec="seconds"),
               *(_text(merged.get(key)) for key in ("model", "device", "hint", "precision")),
               json.dumps(dict(config), default=str), json.dumps(dict(result), default=str))
        with self._connect() as conn:
            try:
                with conn:  # BEGIN ... COMMIT, or ROLLBACK on error
                    cursor = conn.execute(
                        "INSERT INTO runs (kind, created_at, model, device, hint, precision, config, result)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)", row)
            except sqlite3.DatabaseError as exc:
                raise self._corrupt(exc) from exc
            return int(cursor.lastrowid or 0)

    def list(self, limit: int = 50, kind: str | None = None) -> list[dict[str, Any]]:
        """The newest runs first (at most `limit`; 0 means all), optionally of one kind."""
        if kind is not None and kind not in KINDS:
            raise HistoryError(f"unknown run kind {kind!r}", hint=f"Kinds: {', '.join(KINDS)}")
        sql = "SELECT * FROM runs" + (" WHERE kind = ?" if kind else "") + " ORDER BY id DESC"
        params: tuple[Any, ...] = (kind,) if kind else ()
        if limit > 0:
            sql += " LIMIT ?"
            params += (int(limit),)
        with self._connect() as conn:
            try:
                rows = conn.execute(sql, params).fetchall()
            except sqlite3.DatabaseError as exc:
                raise self._corrupt(exc) from exc
        return [_row_dict(row) for row in rows]

    def export(self, fmt: str = "json") -> str:
        """All runs, oldest first, as a JSON array or CSV text (one row per run)."""
        runs = list(reversed(self.list(limit=0)))
        if fmt == "json":
            return json.dumps(runs, indent=2)
        if fmt == "csv":
            return _to_csv(runs)
        raise HistoryError(f"unknown export format {fmt!r}", hint=f"Formats: {', '.join(EXPORT_FORMATS)}")

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            conn = sqlite3.connect(self.path, timeout=10)
        except sqlite3.Error as exc:
            raise HistoryError(
                f"cannot open the history database {self.path}: {exc}",
                hint="Check that the folder exists and is writable (OVPERF_CACHE_DIR).",
            ) from exc
        conn.row_factory = sqlite3.Row
        try:
            yield conn
        finally:
            conn.close()

    def _corrupt(self, detail: object) -> HistoryError:
        return HistoryError(
            f"the history database {self.path} is unreadable or corrupt ({detail})",
            hint="It was left untouched. Move it aside (e.g. rename it to .bak) to start a new history, "
                 "or repair it with the sqlite3 command line tool (.recover).",
        )


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _row_dict(row: sqlite3.Row) -> dict[str, Any]:
    record = {key: row[key] for key in _COLUMNS}
    record["config"] = json.loads(row["config"])
    record["result"] = json.loads(row["result"])
    return record


def _metrics(result: Mapping[str, Any]) -> dict[str, Any]:
    """Headline numbers for a spreadsheet column each (benchmark_app and LLM runs)."""
    latency = result.get("latency_ms")
    return {
        "throughput_fps": result.get("throughput_fps"),
        "latency_median_ms": latency.get("median") if isinstance(latency, Mapping) else latency,
        "duration_s": result.get("duration_s"),
    }


def _to_csv(runs: list[dict[str, Any]]) -> str:
    fields = [*_COLUMNS, "throughput_fps", "latency_median_ms", "duration_s", "config", "result"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for run in runs:
        writer.writerow({**{key: run[key] for key in _COLUMNS}, **_metrics(run["result"]),
                         "config": json.dumps(run["config"], sort_keys=True),
                         "result": json.dumps(run["result"], sort_keys=True)})
    return buffer.getvalue()


def record_run(path: Path, kind: str, config: Mapping[str, Any], result: dict[str, Any]) -> None:
    """Store a run; a broken history database is reported in the result (history_error), not hidden."""
    try:
        result["history_id"] = History(path).add(kind, config, result)
    except AssistantError as exc:
        result["history_error"] = str(exc)

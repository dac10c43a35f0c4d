"""Spies for the hostile-input, fuzz and fault tests: which files were opened, which processes started.

`ProcessSpy` wraps `subprocess.Popen` (everything in the stdlib that starts a process goes through it) and
records each call's argv and `shell` flag; it refuses to start benchmark processes unless allowed, so a
rejected input that slipped through shows up as a recorded call instead of a minute-long benchmark.
`FileWatch` uses a (process-wide, permanent) audit hook to record every `open` of a path under the
watched folders, every SQLite database opened, and every process-creation event.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import sys
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

BENCHMARK_MARKERS = ("benchmark_app", "assistant.tools.workloads")
"""argv fragments of the processes a benchmark starts (benchmark_app, the workload builder)."""

_SPAWN_EVENTS = {"subprocess.Popen", "os.system", "os.posix_spawn", "os.spawn", "os.exec", "os.fork",
                 "os.forkpty", "pty.spawn"}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def is_benchmark(argv: Any) -> bool:
    """True when a process's argv runs benchmark_app or the catalog workload builder."""
    if isinstance(argv, str | bytes):
        return any(marker in str(argv) for marker in BENCHMARK_MARKERS)
    return any(Path(str(arg)).name in {"benchmark_app", "benchmark_app.exe"} or str(arg) == BENCHMARK_MARKERS[1]
               for arg in argv)


class ProcessSpy:
    """Records every `subprocess.Popen(...)`; benchmark processes are blocked unless `allow_benchmarks`."""

    def __init__(self, *, allow_benchmarks: bool = False) -> None:
        self.calls: list[dict[str, Any]] = []
        self.allow_benchmarks = allow_benchmarks
        self._lock = threading.Lock()

    def install(self, monkeypatch: Any) -> ProcessSpy:
        """Replace subprocess.Popen for the lifetime of `monkeypatch`."""
        original = subprocess.Popen
        spy = self

        class SpyPopen(original):  # type: ignore[misc, valid-type]
            def __init__(self, args: Any, *positional: Any, **kwargs: Any) -> None:
                shell = kwargs.get("shell", positional[7] if len(positional) > 7 else False)
                record = {"args": args, "shell": bool(shell), "is_list": isinstance(args, list | tuple),
                          "new_session": bool(kwargs.get("start_new_session")), "blocked": False}
                if is_benchmark(args) and not spy.allow_benchmarks:
                    record["blocked"] = True
                with spy._lock:
                    spy.calls.append(record)
                if record["blocked"]:
                    raise OSError(errno.EPERM, "blocked by the test's process spy")
                super().__init__(args, *positional, **kwargs)

        monkeypatch.setattr(subprocess, "Popen", SpyPopen)
        return self

    @property
    def benchmark_calls(self) -> list[dict[str, Any]]:
        """Calls that would have started a benchmark (blocked or not)."""
        return [c for c in self.calls if is_benchmark(c["args"])]

    def assert_no_shell(self) -> None:
        """Every recorded process got an argv list and no shell."""
        for call in self.calls:
            assert call["shell"] is False, f"a subprocess was started with shell=True: {call}"
            assert call["is_list"], f"a subprocess was started with a command string: {call}"


class FileWatch:
    """Audit-hook recorder of opens under `folders`, SQLite connects and process creation (while active)."""

    _installed = False
    _active: FileWatch | None = None

    def __init__(self, folders: Iterable[Path]) -> None:
        self.folders = tuple({str(Path(f).absolute()) for f in folders} | {os.path.realpath(f) for f in folders})
        self.opened: list[tuple[str, str]] = []
        self.written: list[str] = []  # every path opened for writing (anywhere)
        self.databases: list[str] = []
        self.spawned: list[tuple[str, str]] = []

    def __enter__(self) -> FileWatch:
        if not FileWatch._installed:
            sys.addaudithook(FileWatch._hook)
            FileWatch._installed = True
        FileWatch._active = self
        return self

    def __exit__(self, *exc: object) -> None:
        FileWatch._active = None

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Stop recording for the block (e.g. while the test itself reads the sentinel files)."""
        FileWatch._active = None
        try:
            yield
        finally:
            FileWatch._active = self

    @staticmethod
    def _hook(event: str, args: tuple[Any, ...]) -> None:
        watch = FileWatch._active
        if watch is None:
            return
        if event == "open" and args and isinstance(args[0], str | bytes | os.PathLike):
            path = os.path.abspath(os.fsdecode(args[0]))
            mode = args[1] if len(args) > 1 else None
            flags = args[2] if len(args) > 2 and isinstance(args[2], int) else 0
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or bool(flags & _WRITE_FLAGS)
            if writing:
                watch.written.append(path)
            if any(path == f or path.startswith(f + os.sep) for f in watch.folders):
                watch.opened.append((path, str(mode)))
        elif event == "sqlite3.connect" and args:
            watch.databases.append(os.path.abspath(os.fsdecode(args[0])) if args[0] else "")
        elif event in _SPAWN_EVENTS:
            watch.spawned.append((event, repr(args[:2])[:300]))


def snapshot(folder: Path) -> dict[str, tuple[int, int, bytes]]:
    """(size, mtime_ns, content) of every file under `folder`, to prove it was left untouched."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns, p.read_bytes())
            for p in sorted(folder.rglob("*")) if p.is_file()}

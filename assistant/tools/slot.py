"""One measurement at a time: benchmarks disturb each other's timings.

An in-process lock plus a lock file (so two `ovperf` processes do not overlap either). The processes a
run starts inherit the lock file's descriptor (`held_fds`), so the lock stays taken while anything of a
run is alive, even after the process that started it was killed: a later run then gets ToolBusy instead
of measuring beside it. The lock file names the process that holds it.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from assistant.config import Settings
from assistant.errors import ToolBusy

LOCK_WAIT_S = 0.5
_LOCK = threading.Lock()
_held: list[int] = []  # the lock file's descriptor while this process holds the slot


def held_fds() -> tuple[int, ...]:
    """Descriptors a run's child processes must inherit to keep the slot taken while they live."""
    return tuple(_held)


@contextlib.contextmanager
def exclusive(settings: Settings, name: str = "run_benchmark") -> Iterator[None]:
    """Hold the one-benchmark-at-a-time slot, or raise ToolBusy at once."""
    if not _LOCK.acquire(timeout=LOCK_WAIT_S):
        raise _busy(name)
    try:
        with _file_lock(settings.cache_dir / "benchmark.lock", name):
            yield
    finally:
        _LOCK.release()


@contextlib.contextmanager
def _file_lock(path: Path, name: str) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # not POSIX: the in-process lock alone
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise _busy(name, _holder(path)) from None
        handle.truncate(0)
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        _held.append(handle.fileno())
        try:
            yield
        finally:
            _held.remove(handle.fileno())
            fcntl.flock(handle, fcntl.LOCK_UN)


def _holder(path: Path) -> str:
    """The process id written by the holder of the lock file ('' if unknown)."""
    try:
        return path.read_text().strip().splitlines()[0]
    except (OSError, IndexError):
        return ""


def _busy(name: str, holder: str = "") -> ToolBusy:
    started = f" (started by process {holder})" if holder.isdigit() and int(holder) != os.getpid() else ""
    return ToolBusy(f"{name}: another benchmark is already running{started}",
                    hint="Benchmarks run one at a time so they do not disturb each other's timings; "
                         "wait until it finishes, then try again.")

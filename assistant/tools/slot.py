"""One measurement at a time: benchmarks disturb each other's timings.

An in-process lock plus a lock file (so two `ovperf` processes do not overlap either).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

from assistant.config import Settings
from assistant.errors import ToolBusy

LOCK_WAIT_S = 0.5
_LOCK = threading.Lock()


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
            raise _busy(name) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _busy(name: str) -> ToolBusy:
    return ToolBusy(f"{name}: another benchmark is already running",
                    hint="Benchmarks run one at a time so they do not disturb each other's timings; "
                         "wait until it finishes, then try again.")

"""Publishing a built workload into its cache folder: built in a staging folder, renamed into place.

A crash leaves only a staging folder, which the next build removes once its process is gone; a
concurrent identical build that published first wins.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from assistant.errors import ToolExecutionError


def build_into_cache(target: Path, build: Callable[[Path], object], cached: Callable[[], Path | None], *,
                     what: str, kind: str) -> Path:
    """Run `build(staging)` and publish the staging folder as `target`; `cached()` says whether a complete
    build is there. Raises ToolExecutionError when the build left nothing complete."""
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_abandoned_builds(target.parent)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.{os.getpid()}.", dir=target.parent))
    staging.chmod(0o755)
    try:
        build(staging)
        try:
            os.rename(staging, target)
        except OSError:
            if cached() is None:  # not a concurrent identical build
                shutil.rmtree(target, ignore_errors=True)
                os.rename(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    hit = cached()
    if hit is None:
        raise ToolExecutionError(f"building {what} left no complete {kind} in {target}")
    return hit


def remove_abandoned_builds(folder: Path) -> None:
    """Delete staging folders of builds whose process is gone (killed mid-build)."""
    for staging in folder.glob(".*.*.*"):
        try:
            pid = int(staging.name.split(".")[-2])
        except (ValueError, IndexError):
            continue
        if pid != os.getpid() and not _alive(pid):
            shutil.rmtree(staging, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

"""A child process for tests/test_security.py: holds the benchmark slot and runs a long command through the
real `run_streaming`, printing each output line, so the test can kill -9 it mid-run.

    python tests/orphan_worker.py CACHE_DIR child       # the command sleeps; it prints its pid
    python tests/orphan_worker.py CACHE_DIR grandchild  # the command also leaves a process of its own
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from assistant.config import Settings
from assistant.tools.base import ToolContext
from assistant.tools.benchmark import run_streaming
from assistant.tools.slot import exclusive

CHILD = "import os, time; print('CHILD', os.getpid(), flush=True); time.sleep(60)"
GRANDCHILD = ("import os, subprocess, sys, time; "
              "g = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'], close_fds=False); "
              "print('CHILD', os.getpid(), 'GRANDCHILD', g.pid, flush=True); time.sleep(60)")


def main() -> None:
    cache, mode = Path(sys.argv[1]), sys.argv[2]
    settings = Settings(cache_dir=cache, history_db=cache / "history.sqlite")
    script = GRANDCHILD if mode == "grandchild" else CHILD
    with exclusive(settings):
        run_streaming([sys.executable, "-c", script], ctx=ToolContext(settings=settings), time_limit=90,
                      label="worker", progress=lambda line: line and print(line, flush=True))


if __name__ == "__main__":
    main()

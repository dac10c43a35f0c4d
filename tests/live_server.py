"""Helpers for the server tests: settings under tmp (sharing the embedder export) and a real uvicorn
server on a free loopback port, run in a thread."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from types import TracebackType

import uvicorn

from assistant.config import PROJECT_ROOT, Settings

SHARED_EMBEDDER = PROJECT_ROOT / ".cache" / "embedder"
"""The app's own embedder cache (gitignored); linked into tmp caches so it is exported only once."""


def shared_cache(cache: Path) -> Path:
    """A cache folder whose embedder exports and trained intent classifier are the shared ones (building
    them takes about two minutes on two cores; they depend on the installed model files only)."""
    cache.mkdir(parents=True, exist_ok=True)
    try:
        SHARED_EMBEDDER.mkdir(parents=True, exist_ok=True)
        (cache / "embedder").symlink_to(SHARED_EMBEDDER, target_is_directory=True)
    except OSError:  # read-only checkout, or linked already: export into tmp instead
        pass
    return cache


def web_settings(root: Path, **changes: object) -> Settings:
    """Settings whose cache and history live under `root`; the exported embedders are shared."""
    cache = shared_cache(root / "cache")
    return Settings(cache_dir=cache, history_db=cache / "history.sqlite").replace(**changes)


class LiveServer:
    """`with LiveServer(app) as server:` serves `app` on http://127.0.0.1:PORT until the block ends."""

    def __init__(self, app: object, *, start_timeout: float = 60.0, **options: object) -> None:
        """`options` are more uvicorn.Config options (e.g. assistant.http_limits.uvicorn_options)."""
        self.app = app
        self.start_timeout = start_timeout
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2, **options)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]},
                                        name=f"uvicorn-{self.port}", daemon=True)

    def __enter__(self) -> LiveServer:
        self._thread.start()
        deadline = time.monotonic() + self.start_timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=15)
        self._socket.close()

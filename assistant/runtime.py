"""The shared Assistant of a server process and the state of its model (loading, ready, failed).

The index and catalog are built before the server listens (seconds); the LLM loads in a
background thread (it may first be pulled from PyPI), so the web UI can show a clear
"loading model" state and catalog answers work meanwhile.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from assistant.config import Settings
from assistant.errors import AssistantError

log = logging.getLogger(__name__)


class Runtime:
    """One Assistant shared by every front end of the process, plus its model's load state."""

    def __init__(self, assistant: Any, settings: Settings) -> None:
        self.assistant = assistant
        self.settings = settings
        self.started_at = time.time()
        self._state = "lazy"  # lazy | loading | ready | error
        self._progress: tuple[float, str] = (0.0, "")
        self._error: dict[str, Any] | None = None
        self._lock = threading.Lock()

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        """Build the Assistant (knowledge, index, catalog, tools); the LLM is not loaded yet."""
        from assistant.core import Assistant

        holder: list[Runtime] = []
        assistant = Assistant.create(settings, progress=lambda f, m: holder and holder[0].on_progress(f, m))
        holder.append(cls(assistant, settings))
        return holder[0]

    def on_progress(self, fraction: float, message: str) -> None:
        """Progress of the model load (pull, conversion, compilation)."""
        self._progress = (float(fraction), str(message))

    def preload(self) -> None:
        """Start loading the LLM in a background thread (once)."""
        with self._lock:
            if self._state in {"loading", "ready"}:
                return
            self._state, self._error = "loading", None
        threading.Thread(target=self._load, name="load-llm", daemon=True).start()

    def _load(self) -> None:
        try:
            self.assistant.llm()
        except AssistantError as error:
            log.error("the model could not be loaded: %s", error)
            self._error = error.to_dict()
            self._state = "error"
        except Exception as error:  # reported in /healthz and the UI; catalog answers keep working
            log.exception("the model could not be loaded")
            self._error = {"error": type(error).__name__, "message": str(error), "hint": None}
            self._state = "error"
        else:
            self._state = "ready"

    @property
    def model_loaded(self) -> bool:
        """True once the LLM is in memory (loaded by `preload` or by a first question)."""
        loaded = getattr(self.assistant, "llm_loaded", None)
        return bool(loaded) if loaded is not None else self._state == "ready"

    @property
    def model_state(self) -> str:
        """lazy (loads on first use), loading, ready or error."""
        return "ready" if self.model_loaded else self._state

    def status(self) -> dict[str, Any]:
        """Health of the process: what is loaded, and the model's progress or error."""
        fraction, message = self._progress
        state = self.model_state
        return {
            "status": {"error": "degraded", "loading": "loading"}.get(state, "ok"),
            "model_loaded": self.model_loaded,
            "model": {"state": state, "name": self.settings.model or "default",
                      "progress": round(fraction, 3), "message": message, "error": self._error},
            "index_loaded": self.assistant is not None,
            "uptime_s": round(time.time() - self.started_at, 1),
        }

"""Whether a tool may run: one policy for every front end (CLI, web UI, HTTP API, OpenAI route).

`OVPERF_TOOLS` / `--tools` (`Settings.tools_mode`) is the master switch: `off` means no tool runs from
any front end. The CLI and the web UI run a tool the user asked for (a command, a confirmed card, a
form); the HTTP API and the OpenAI-compatible route run tools only with `OVPERF_API_TOOLS=1`
(`remote`), since the benchmark would run on the server, not on the caller's machine. The check is
made where the tool runs (`Assistant.run_tool`, the CLI's tool commands), so no front end can skip it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Literal

from assistant.config import Settings
from assistant.errors import ToolsDisabled

FrontEnd = Literal["cli", "ui", "api", "openai"]
LOCAL_FRONT_ENDS = frozenset({"cli", "ui"})
"""Front ends whose user is at the machine (or signed in to its web UI) and asked for the run."""


@dataclass(frozen=True, kw_only=True)
class ToolPolicy:
    """Which front ends may run tools."""

    mode: str = "plan"  # Settings.tools_mode: run | plan | off (off: nothing runs, anywhere)
    remote: bool = False  # OVPERF_API_TOOLS: the HTTP API and the OpenAI route may run tools

    @classmethod
    def from_settings(cls, settings: Settings, *, remote: bool = False) -> ToolPolicy:
        """The policy of a process with these settings (`remote` from the portal settings)."""
        return cls(mode=settings.tools_mode, remote=remote)

    def allows(self, front_end: str) -> bool:
        """True if a tool may run when this front end asks for it."""
        if self.mode == "off":
            return False
        return front_end in LOCAL_FRONT_ENDS or self.remote

    def check(self, name: str, front_end: str) -> None:
        """Raise ToolsDisabled unless `name` may run for this front end."""
        if self.mode == "off":
            raise ToolsDisabled(f"running {name} is switched off on this machine (tools mode off)",
                                hint="Unset OVPERF_TOOLS (or set it to plan or run) to allow tools.")
        if not self.allows(front_end):
            raise ToolsDisabled(f"running {name} through the API is switched off on this server",
                                hint="Set OVPERF_API_TOOLS=1 to allow it, or use the web UI or the CLI.")

    def answer_mode(self, front_end: str, requested: str | None = None) -> str:
        """The tools mode an answer gets: the requested one (or the configured one), never `run` when the
        front end may not run tools, and always `off` when tools are off."""
        if self.mode == "off":
            return "off"
        mode = requested or self.mode
        return "plan" if mode == "run" and not self.allows(front_end) else mode


@dataclass(frozen=True, kw_only=True)
class Caller:
    """Who asks for an answer or a tool run: the front end, its policy, and a flag set when it goes away."""

    front_end: str = "cli"
    policy: ToolPolicy | None = None  # None: the Assistant's own (from its settings)
    cancel: threading.Event = field(default_factory=threading.Event)

"""The exception tree. Front ends catch `AssistantError` and show `str(error)`.

AssistantError
├── InvalidQuestion        empty, too long, undecodable input
├── KnowledgeError         a knowledge file is missing or unreadable
├── RetrievalIndexError    the persisted index cannot be used (it is rebuilt)
├── ModelError
│   ├── ModelNotFound      no model at the path; the hint names the pull command
│   ├── ModelCorrupt       sha256 mismatch or truncated file; the hint says re-pull
│   └── DeviceNotAvailable the requested OpenVINO device is not present
├── GenerationCancelled    a generation was stopped because its caller went away or cancelled it
├── ToolError
│   ├── UnknownTool
│   ├── ToolArgumentError  arguments rejected by the schema or an allow-list
│   ├── ToolBusy           another benchmark is running
│   ├── ToolsDisabled      the tool policy does not let this front end run tools
│   └── ToolExecutionError the tool ran and failed (or hit its time limit)
└── ConfigError            a setting has an invalid value
"""

from __future__ import annotations


class AssistantError(Exception):
    """Base of every error a user can cause or fix; carries a hint on what to do."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n{self.hint}" if self.hint else self.message

    def to_dict(self) -> dict[str, str | None]:
        """JSON form for APIs: error type, message and hint."""
        return {"error": type(self).__name__, "message": self.message, "hint": self.hint}


class InvalidQuestion(AssistantError):
    """The question is empty, too long or not valid text."""

    exit_code = 2


class ConfigError(AssistantError):
    """A setting has an invalid value."""

    exit_code = 2


class KnowledgeError(AssistantError):
    """A knowledge file or folder is missing or unreadable."""


class RetrievalIndexError(AssistantError):
    """The persisted retrieval index is corrupt or incompatible."""


class ModelError(AssistantError):
    """A model cannot be loaded."""


class ModelNotFound(ModelError):
    """No model at the given path or id."""


class ModelCorrupt(ModelError):
    """A model file failed verification (sha256 mismatch, truncated)."""


class DeviceNotAvailable(ModelError):
    """The requested OpenVINO device is not present on this machine."""

    exit_code = 2


class GenerationCancelled(AssistantError):
    """A generation was stopped before its end because its caller cancelled it (e.g. the client left)."""


class ToolError(AssistantError):
    """Base for tool problems."""


class UnknownTool(ToolError):
    """No tool has that name."""

    exit_code = 2


class ToolArgumentError(ToolError):
    """Tool arguments failed schema or allow-list validation."""

    exit_code = 2


class ToolBusy(ToolError):
    """Another exclusive tool run (a benchmark) is in progress."""


class ToolsDisabled(ToolError):
    """The tool policy does not let this front end run tools (tools off, or API tools not enabled)."""


class ToolExecutionError(ToolError):
    """The tool ran and failed, or was stopped at its time limit."""

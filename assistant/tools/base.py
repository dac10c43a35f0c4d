"""One declaration per tool: name, description, JSON schema and function.

The same `Tool.schema` is what the LLM is constrained to, what the web UI renders
as a form, and what `GET /api/tools` serves.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jsonschema

from assistant.config import Settings
from assistant.errors import ToolArgumentError, UnknownTool

ProgressCallback = Callable[[float, str], None]
"""Called with (fraction done 0..1, message) while a tool runs."""


@dataclass(frozen=True, kw_only=True)
class ToolContext:
    """What a running tool may use: settings, a progress sink and a cancel flag."""

    settings: Settings
    progress: ProgressCallback = lambda fraction, message: None
    cancel: threading.Event = field(default_factory=threading.Event)


@dataclass(frozen=True, kw_only=True)
class Tool:
    """A callable the assistant may run, declared once."""

    name: str
    description: str
    parameters: Mapping[str, Any]  # JSON schema of the arguments (type object)
    function: Callable[[dict[str, Any], ToolContext], dict[str, Any]]
    exclusive: bool = False  # only one exclusive tool runs at a time (benchmarks)
    check: Callable[[dict[str, Any], Settings], None] | None = None  # allow-list checks

    @property
    def schema(self) -> dict[str, Any]:
        """OpenAI-style function declaration of this tool."""
        return {"name": self.name, "description": self.description, "parameters": dict(self.parameters)}

    def validate(self, arguments: Any, settings: Settings) -> dict[str, Any]:
        """Return the arguments with defaults filled in, or raise ToolArgumentError."""
        if not isinstance(arguments, dict):
            raise ToolArgumentError(f"{self.name}: arguments must be a JSON object")
        validator = jsonschema.Draft202012Validator(self.parameters)
        errors = sorted(validator.iter_errors(arguments), key=lambda e: list(e.path))
        if errors:
            first = errors[0]
            where = ".".join(str(p) for p in first.path) or "arguments"
            raise ToolArgumentError(
                f"{self.name}: invalid {where}: {first.message}",
                hint=f"Valid arguments: {_describe(self.parameters)}",
            )
        filled = {
            name: spec["default"]
            for name, spec in self.parameters.get("properties", {}).items()
            if "default" in spec
        }
        filled.update(arguments)
        for name, spec in self.parameters.get("properties", {}).items():
            if spec.get("type") == "integer" and isinstance(filled.get(name), float):
                filled[name] = int(filled[name])  # JSON Schema calls 10.0 an integer; tools need an int
        if self.check is not None:
            self.check(filled, settings)
        return filled


def _describe(parameters: Mapping[str, Any]) -> str:
    parts = []
    for name, spec in parameters.get("properties", {}).items():
        if "enum" in spec:
            parts.append(f"{name} one of {', '.join(map(str, spec['enum']))}")
        elif spec.get("type") == "integer":
            parts.append(f"{name} integer {spec.get('minimum', '')}..{spec.get('maximum', '')}")
        else:
            parts.append(f"{name} ({spec.get('type', 'any')})")
    return "; ".join(parts) or "none"


class ToolRegistry:
    """The tools this assistant knows, by name."""

    def __init__(self, tools: Iterable[Tool]) -> None:
        self._tools = {tool.name: tool for tool in tools}

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self):
        return iter(self._tools.values())

    def names(self) -> list[str]:
        """Tool names in declaration order."""
        return list(self._tools)

    def get(self, name: str) -> Tool:
        """The tool called `name`, or UnknownTool listing the valid names."""
        try:
            return self._tools[name]
        except KeyError:
            raise UnknownTool(
                f"unknown tool {name!r}", hint=f"Available tools: {', '.join(self._tools)}"
            ) from None

    def schemas(self) -> list[dict[str, Any]]:
        """Declarations of every tool, for the LLM, the UI and the API."""
        return [tool.schema for tool in self._tools.values()]

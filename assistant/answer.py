"""The answer contract (design.md) and the events a streamed answer is made of."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, kw_only=True)
class Source:
    """A cited chunk, as indexed, with its relevance to the question.

    `score` is the cosine similarity of question and chunk (`match` "similarity"), or 1.0 for a catalog row or
    table the answer was read from exactly (`match` "exact"); an answer lists its sources by score, best first.
    """

    id: str
    title: str
    text: str
    score: float
    file: str = ""
    match: str = "similarity"  # similarity | exact

    def to_dict(self) -> dict[str, Any]:
        """JSON form of the contract."""
        return {"id": self.id, "title": self.title, "text": self.text, "score": round(self.score, 4),
                "file": self.file, "match": self.match}

    def score_label(self) -> str:
        """How a reader sees the score: 'exact catalog match' or 'similarity 0.63'."""
        return "exact catalog match" if self.match == "exact" else f"similarity {self.score:.2f}"


@dataclass(kw_only=True)
class ToolCall:
    """A tool the assistant decided to call, and what became of it."""

    name: str
    arguments: dict[str, Any]
    status: str = "planned"  # planned | ok | error | declined
    result: dict[str, Any] | None = None
    error: str | None = None
    error_type: str | None = None  # exception class name, for status codes at the API edge

    def to_dict(self) -> dict[str, Any]:
        """JSON form of the contract."""
        data: dict[str, Any] = {"name": self.name, "arguments": self.arguments, "status": self.status,
                                "result": self.result}
        if self.error:
            data["error"] = self.error
        return data


@dataclass(kw_only=True)
class Answer:
    """One complete answer: text, citations, tool calls, timings."""

    question: str
    answer: str
    refused: bool = False
    sources: list[Source] = field(default_factory=list)
    tool_calls: list[ToolCall] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)
    route: str = "faq"
    id: str | None = None
    usage: dict[str, int] | None = None  # prompt/completion tokens when the LLM generated
    language: str = "en"  # the question's language (ISO 639-1), which the assistant's own sentences use
    intent: str | None = None  # what the intent classifier read in the question

    def to_dict(self) -> dict[str, Any]:
        """The answer JSON of design.md (plus `route`)."""
        data: dict[str, Any] = {}
        if self.id is not None:
            data["id"] = self.id
        data.update(
            question=self.question,
            answer=self.answer,
            refused=self.refused,
            sources=[s.to_dict() for s in self.sources],
            tool_calls=[c.to_dict() for c in self.tool_calls],
            timings_ms={k: round(v, 1) for k, v in self.timings_ms.items()},
            route=self.route,
            language=self.language,
        )
        if self.intent is not None:
            data["intent"] = self.intent
        if self.usage is not None:
            data["usage"] = self.usage
        return data


@dataclass(frozen=True)
class TokenEvent:
    """A piece of answer text, in order."""

    text: str


@dataclass(frozen=True)
class SourcesEvent:
    """The sources the answer cites (sent before the text)."""

    sources: list[Source]


@dataclass(frozen=True)
class ToolStartedEvent:
    """A tool call is about to run (or is only planned)."""

    call: ToolCall


@dataclass(frozen=True)
class ToolProgressEvent:
    """Progress of a running tool."""

    name: str
    fraction: float
    message: str


@dataclass(frozen=True)
class ToolResultEvent:
    """A tool call finished (status ok or error)."""

    call: ToolCall


@dataclass(frozen=True)
class DoneEvent:
    """The complete answer; always the last event."""

    answer: Answer


Event = TokenEvent | SourcesEvent | ToolStartedEvent | ToolProgressEvent | ToolResultEvent | DoneEvent

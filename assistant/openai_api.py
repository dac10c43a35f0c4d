"""OpenAI chat-completions wire format for Assistant answers (requests, objects, SSE chunks).

Non-streamed: one `chat.completion` object with extra top-level fields `sources` (the answer's
cited sources, in rank order, as in the answer JSON), `refused`, `server_tool_calls` (tools the
assistant planned or ran itself; not OpenAI function calls for the client to run) and `timings_ms`.

Streamed (`stream: true`): `text/event-stream` of `data: {chat.completion.chunk}` lines: first the
role, then one chunk per piece of text, then a chunk with `finish_reason: "stop"`, then one chunk with
`choices: []` and the same extra fields (`sources`, `refused`, `server_tool_calls`, `timings_ms`),
and finally `data: [DONE]`. An error after the stream started is sent as `data: {"error": {...}}`
(the OpenAI clients raise it) followed by `data: [DONE]`.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from assistant.answer import Answer
from assistant.errors import InvalidQuestion

MODEL_ID = "ovperf-assistant"
"""The assistant (retrieval + catalog + LLM + tools): the last user message is a question."""
RAW_MODEL_ID = "ovperf-llm"
"""The bare LLM: the messages go to the model as they are (for replicas started with --llm-endpoint)."""


class ContentPart(BaseModel):
    """One part of a multi-part message; only text parts are used."""

    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    """An OpenAI chat message."""

    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        """The message's text (text parts joined)."""
        if isinstance(self.content, list):
            return "\n".join(part.text or "" for part in self.content if part.type == "text")
        return self.content or ""


class ChatRequest(BaseModel):
    """The body of POST /v1/chat/completions (sampling options are accepted and ignored)."""

    model_config = ConfigDict(extra="allow")
    model: str = MODEL_ID
    messages: list[ChatMessage] = Field(min_length=1, max_length=200)
    stream: bool = False
    max_tokens: int | None = Field(default=None, ge=1, le=1024)
    stop: str | list[str] | None = None

    def raw_messages(self) -> list[dict[str, str]]:
        """The messages as plain {role, content} dicts, for the bare LLM."""
        return [{"role": "system" if m.role == "developer" else m.role, "content": m.text()}
                for m in self.messages if m.role in {"system", "developer", "user", "assistant"}]

    def stop_list(self) -> list[str] | None:
        """`stop` as a list (at most 4 strings, as OpenAI allows)."""
        if self.stop is None:
            return None
        return ([self.stop] if isinstance(self.stop, str) else list(self.stop))[:4]

    def question_and_history(self) -> tuple[str, list[dict[str, str]]]:
        """The last user message is the question; earlier user/assistant messages are the history."""
        last = self.messages[-1]
        if last.role != "user":
            raise InvalidQuestion("the last message must have the role 'user'",
                                  hint="Put the question in a final {\"role\": \"user\"} message.")
        history = [{"role": m.role, "content": m.text()} for m in self.messages[:-1]
                   if m.role in {"user", "assistant"}]
        return last.text(), history


def completion_id() -> str:
    """A new `chatcmpl-...` id."""
    return f"chatcmpl-{uuid.uuid4().hex[:24]}"


def extras(answer: Answer) -> dict[str, Any]:
    """The assistant-specific top-level fields: sources, refused, server tool calls, timings."""
    data = answer.to_dict()
    fields = {"sources": data["sources"], "refused": data["refused"],
              "server_tool_calls": data["tool_calls"], "timings_ms": data["timings_ms"]}
    if usage := data.get("usage"):  # token counts, when the answer carries them
        fields["usage"] = usage
    return fields


def completion(answer: Answer, *, cid: str, model: str = MODEL_ID) -> dict[str, Any]:
    """A non-streamed `chat.completion` object (with the extra fields)."""
    return {
        "id": cid, "object": "chat.completion", "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": answer.answer},
                     "finish_reason": "stop", "logprobs": None}],
        **extras(answer),
    }


def chunk(cid: str, *, delta: dict[str, Any] | None = None, finish_reason: str | None = None,
          model: str = MODEL_ID, **extra: Any) -> dict[str, Any]:
    """One `chat.completion.chunk`; without a delta, a chunk with no choices (for the extras)."""
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish_reason,
                                         "logprobs": None}]
    return {"id": cid, "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
            "choices": choices, **extra}


def sse(data: dict[str, Any] | str) -> str:
    """One server-sent event line."""
    return f"data: {data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)}\n\n"


def models_list(created: int) -> dict[str, Any]:
    """The GET /v1/models object."""
    return {"object": "list", "data": [{"id": model_id, "object": "model", "created": created, "owned_by": "ovperf"}
                                       for model_id in (MODEL_ID, RAW_MODEL_ID)]}


def raw_completion(text: str, usage: dict[str, int], *, cid: str) -> dict[str, Any]:
    """A chat.completion object for a bare LLM generation."""
    return {"id": cid, "object": "chat.completion", "created": int(time.time()), "model": RAW_MODEL_ID,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {**usage, "total_tokens": sum(usage.values())}}

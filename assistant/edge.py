"""Response hygiene at the HTTP edge, for every route (the API's and the mounted web UI's).

`ResponseShape` is an ASGI middleware that (1) turns the `{"detail": ...}` bodies that routing and
Gradio produce for 4xx errors (an unknown path, a wrong method) into the documented
`{error, message, hint}`, (2) keeps the web UI's sign-in page from embedding the UI's API schema (Gradio
puts it into the unauthenticated page), and (3) shows no absolute server paths in error messages and
hints (they become relative to the project, `~` or `<python>`).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from assistant.config import PROJECT_ROOT
from assistant.portal import ASGIApp, Message, Receive, Scope, Send, error_body

ERROR_NAMES = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
               405: "MethodNotAllowed", 408: "RequestTimeout", 409: "Conflict", 413: "PayloadTooLarge",
               422: "ValidationError", 429: "RateLimited"}
HINTS = {404: "See /api/docs for the API's endpoints; the web chat is at /.",
         405: "See /api/docs for the methods each endpoint takes."}
_API_INFO = re.compile(rb"window\.gradio_api_info\s*=\s*\{.*?\};\s*</script>", re.DOTALL)
_NO_API_INFO = b'window.gradio_api_info = {"named_endpoints":{},"unnamed_endpoints":{}};</script>'


def scrub_paths(text: str) -> str:
    """`text` without absolute paths of this server: the project, the Python environment, the home."""
    replacements = [(str(PROJECT_ROOT) + "/", ""), (str(PROJECT_ROOT), "."),
                    (sys.prefix + "/", "<python>/"), (str(Path.home()) + "/", "~/")]
    for old, new in replacements:
        if len(old) > 2:
            text = text.replace(old, new)
    return text


def shaped(status: int, body: bytes) -> bytes | None:
    """The documented error body for a 4xx `{"detail": ...}` body (None when the body is already fine);
    paths are scrubbed from every error body."""
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(value, dict):
        return None
    if set(value) == {"detail"}:
        detail = value["detail"]
        message = detail if isinstance(detail, str) else json.dumps(detail)[:500]
        value = error_body(ERROR_NAMES.get(status, f"HTTP{status}"), message, HINTS.get(status))
    elif not {"error", "message"} <= set(value):
        return None
    return json.dumps(_scrubbed(value)).encode()


def _scrubbed(value: Any) -> Any:
    """Every string in a JSON value with `scrub_paths` applied."""
    if isinstance(value, str):
        return scrub_paths(value)
    if isinstance(value, dict):
        return {k: _scrubbed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrubbed(v) for v in value]
    return value


class ResponseShape:
    """ASGI middleware: documented error bodies, no API schema on the sign-in page, no server paths."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        held: dict[str, Any] = {}

        async def shaping_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = {k.lower(): v for k, v in message.get("headers", [])}
                kind = headers.get(b"content-type", b"")
                status = message["status"]
                if (status >= 400 and kind.startswith(b"application/json")) or (
                        scope["method"] == "GET" and kind.startswith(b"text/html") and status == 200):
                    held.update(start=message, body=b"", html=kind.startswith(b"text/html"))
                    return
                await send(message)
                return
            if message["type"] == "http.response.body" and "start" in held:
                held["body"] += message.get("body", b"")
                if message.get("more_body", False):
                    return
                await self._flush(held, send)
                return
            await send(message)

        await self.app(scope, receive, shaping_send)

    @staticmethod
    async def _flush(held: dict[str, Any], send: Send) -> None:
        start, body = held.pop("start"), held["body"]
        if held["html"]:
            new = _API_INFO.sub(_NO_API_INFO, body, count=1) if b'"auth_required":true' in body else None
        else:
            new = shaped(start["status"], body)
        if new is not None:
            body = new
            start = {**start, "headers": [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
                     + [(b"content-length", str(len(body)).encode())]}
        await send(start)
        await send({"type": "http.response.body", "body": body})

"""The portal's limits on the web UI's own routes (Gradio), enforced outside the UI code.

Every POST that is not the JSON API (`/api/*`, `/v1/*`) or the sign-in is a call into the web UI:
`/gradio_api/queue/join`, `/gradio_api/call/...`, `/gradio_api/run/...` and the like. `UIGuard` gives
them the API's limits: the body limit (413), the per-address rate limit (429, Retry-After), the question
limit on every text the call carries (422), and a bound on the conversation it carries (422). Calls of
the UI's light functions (Gradio `queue=False`: the status banner, showing a card, clearing the box) do not
count against the rate limit, so a browser's own polling is never refused. Uploads and recordings are off
(403): no UI component takes files, so nothing may be stored.
"""

from __future__ import annotations

import json
from typing import Any

from assistant.portal import (
    GUARDED_PREFIXES,
    LOGIN_PATHS,
    ASGIApp,
    Message,
    PortalSettings,
    RateLimiter,
    Receive,
    Scope,
    Send,
    error_body,
    send_json,
    too_large,
)

MAX_UI_MESSAGES = 400
"""The most chat messages one UI call may carry (the API allows 100 turns; a UI turn is up to four
messages: question, answer, sources, tool card)."""
DENIED = ("/upload", "/process_recording", "/vibe-edit", "/undo-vibe-edit", "/vibe-code")
"""UI routes that store files or change the app: refused."""


class UIGuard:
    """ASGI middleware: body size, rate limit, question and conversation limits for web-UI calls."""

    def __init__(self, app: ASGIApp, portal: PortalSettings, light: LightFunctions | None = None) -> None:
        self.app = app
        self.portal = portal
        self.light = light or LightFunctions()
        self.limiter = RateLimiter(portal.rate_limit_per_minute)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not _is_ui_call(scope):
            await self.app(scope, receive, send)
            return
        path = scope["path"].rstrip("/")
        if any(path.endswith(denied) for denied in DENIED):
            await send_json(send, 403, error_body("UploadsDisabled", "uploads are switched off on this server",
                                                   "Ask in the chat; the assistant takes no files."), [])
            return
        limit = self.portal.max_body_bytes
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > limit:
            await send_json(send, 413, too_large(limit), [])
            return
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > limit:
                await send_json(send, 413, too_large(limit), [])
                return
        try:
            payload = json.loads(body) if body.strip() else {}
        except (ValueError, RecursionError):
            payload = None  # not JSON: Gradio answers it
        payload = payload if isinstance(payload, dict) else {}
        if not self.light.covers(path, payload) and (
                wait := self.limiter.check(f"ip:{(scope.get('client') or ('?',))[0]}")):
            seconds = max(1, int(wait + 0.999))
            await send_json(send, 429, error_body(
                "RateLimited", f"too many requests: the limit is {self.portal.rate_limit_per_minute} per minute",
                f"Retry in {seconds} s."), [("retry-after", str(seconds))])
            return
        if (problem := self._problem(payload)) is not None:
            await send_json(send, 422, problem, [])
            return
        await self.app(scope, _replay(body, receive), send)

    def _problem(self, payload: dict[str, Any]) -> dict[str, Any] | None:
        """The 422 body when the call's data breaks the question or conversation limit."""
        data = payload.get("data")
        for value in data if isinstance(data, list) else ():
            if isinstance(value, str) and len(value) > self.portal.max_question_chars:
                return error_body("InvalidQuestion", f"the question is too long ({len(value)} characters; the "
                                  f"limit is {self.portal.max_question_chars})", "Shorten it to the question itself.")
            if isinstance(value, list) and len(value) > MAX_UI_MESSAGES:
                return error_body("InvalidQuestion", f"the conversation is too long ({len(value)} messages; the "
                                  f"limit is {MAX_UI_MESSAGES})", "Clear the chat and ask again.")
        return None


class LightFunctions:
    """The UI functions that run without Gradio's queue (cheap by construction), by index and API name."""

    def __init__(self) -> None:
        self.indices: set[int] = set()
        self.names: set[str] = set()

    def learn(self, blocks: Any) -> None:
        """Record the `queue=False` functions of a Gradio Blocks app."""
        for index, function in dict(getattr(blocks, "fns", {})).items():
            if not getattr(function, "queue", True):
                self.indices.add(int(index))
                if isinstance(getattr(function, "api_name", None), str):
                    self.names.add(function.api_name)

    def covers(self, path: str, payload: dict[str, Any]) -> bool:
        """True if the call (its fn_index, or the API name in its path) is one of the light functions."""
        index = payload.get("fn_index")
        if isinstance(index, int) and not isinstance(index, bool):
            return index in self.indices
        parts = path.split("/")
        name = next((parts[i + 1] for i, part in enumerate(parts[:-1]) if part in {"call", "run", "api"}), None)
        return name is not None and name != "predict" and name in self.names


def _is_ui_call(scope: Scope) -> bool:
    """A POST into the web UI (not the JSON API, not the sign-in, which PortalGuard limits)."""
    if scope["type"] != "http" or scope["method"] != "POST":
        return False
    path = scope["path"]
    return not path.startswith(GUARDED_PREFIXES) and path not in LOGIN_PATHS


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that hands over the buffered body once, then the client's later messages (disconnect)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed

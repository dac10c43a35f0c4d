"""Settings and guards of the public HTTP API: API keys, body and question limits, rate limit, tools.

`PortalGuard` is a pure ASGI middleware in front of `/api/*` and `/v1/*`: it rejects oversize bodies
(413), missing or wrong API keys (401) and clients over their per-minute budget (429, Retry-After),
always with the JSON error shape `{error, message, hint}`. `/healthz`, `/widget.js`, `/demo` and the
web UI are not guarded.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import JSONResponse, Response

from assistant.config import parse_flag
from assistant.errors import ConfigError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

GUARDED_PREFIXES = ("/api/", "/v1/")
"""Paths the guard applies to (`/healthz` is never guarded)."""
LOGIN_PATHS = ("/login", "/login/")
"""The web UI's sign-in (an API key as the password): body size and rate limit per IP, no key."""


@dataclass(frozen=True, kw_only=True)
class PortalSettings:
    """How the HTTP API is exposed: keys, CORS origins, limits, and whether tools may run."""

    api_keys: tuple[str, ...] = ()  # empty: no key required
    cors_origins: tuple[str, ...] = ()  # browser origins allowed to call the API
    max_body_bytes: int = 64 * 1024
    max_question_chars: int = 2000
    rate_limit_per_minute: int = 60  # per client (API key, else IP); 0 = unlimited
    tools_enabled: bool = False  # POST /api/tools/* and tools="run" through the API
    max_active_requests: int = 16  # answers computed at once; the rest wait in a fair queue
    max_active_per_client: int = 4  # of those, at most this many per client (key or IP)
    max_queued_requests: int = 64  # beyond this, 503 busy
    ui_enabled: bool = True  # mount the Gradio web UI at /
    trusted_proxies: tuple[str, ...] = ()  # addresses/networks whose X-Forwarded-For is believed; none
    read_timeout_s: float = 10.0  # a request's headers, and each part of its body, must arrive within this

    def __post_init__(self) -> None:
        if not self.read_timeout_s > 0:
            raise ConfigError(f"read_timeout_s must be positive, not {self.read_timeout_s}")
        for name in ("max_body_bytes", "max_question_chars", "max_active_requests", "max_active_per_client"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, not {getattr(self, name)}")
        if self.rate_limit_per_minute < 0 or self.max_queued_requests < 0:
            raise ConfigError("rate_limit_per_minute and max_queued_requests must not be negative")
        for proxy in self.trusted_proxies:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                raise ConfigError(f"OVPERF_TRUSTED_PROXIES: {proxy!r} is not an IP address or network",
                                  hint="List proxy addresses or networks, e.g. 10.0.0.5,192.168.0.0/16.") from None

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **overrides: Any) -> PortalSettings:
        """From OVPERF_API_KEYS, _CORS_ORIGINS, _MAX_BODY_BYTES, _RATE_LIMIT, _API_TOOLS=1, _UI=0,
        _READ_TIMEOUT (seconds) and _TRUSTED_PROXIES (comma-separated addresses or networks)."""
        values: dict[str, Any] = {}
        if keys := environ.get("OVPERF_API_KEYS"):
            values["api_keys"] = _split(keys)
        if origins := environ.get("OVPERF_CORS_ORIGINS"):
            values["cors_origins"] = _split(origins)
        for env_name, key in (("OVPERF_MAX_BODY_BYTES", "max_body_bytes"),
                              ("OVPERF_MAX_QUESTION_CHARS", "max_question_chars"),
                              ("OVPERF_RATE_LIMIT", "rate_limit_per_minute"),
                              ("OVPERF_MAX_ACTIVE", "max_active_requests"),
                              ("OVPERF_MAX_ACTIVE_PER_CLIENT", "max_active_per_client")):
            if environ.get(env_name):
                try:
                    values[key] = int(environ[env_name])
                except ValueError as exc:
                    raise ConfigError(f"{env_name} must be an integer, not {environ[env_name]!r}") from exc
        if "OVPERF_API_TOOLS" in environ:
            values["tools_enabled"] = parse_flag("OVPERF_API_TOOLS", environ["OVPERF_API_TOOLS"])
        if "OVPERF_UI" in environ:
            values["ui_enabled"] = parse_flag("OVPERF_UI", environ["OVPERF_UI"])
        if timeout := environ.get("OVPERF_READ_TIMEOUT"):
            try:
                values["read_timeout_s"] = float(timeout)
            except ValueError as exc:
                raise ConfigError(f"OVPERF_READ_TIMEOUT must be a number of seconds, not {timeout!r}") from exc
        if proxies := environ.get("OVPERF_TRUSTED_PROXIES"):
            values["trusted_proxies"] = _split(proxies)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def _split(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def error_body(error: str, message: str, hint: str | None = None, **extra: Any) -> dict[str, Any]:
    """The JSON shape of every API error."""
    return {"error": error, "message": message, "hint": hint, **extra}


class RateLimiter:
    """Sliding one-minute window per client: at most `per_minute` requests."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}

    def check(self, client: str) -> float:
        """Record a request; return 0 when allowed, else the seconds until the next one is."""
        if self.per_minute <= 0:
            return 0.0
        now = self._clock()
        hits = self._hits.setdefault(client, deque())
        while hits and hits[0] <= now - 60:
            hits.popleft()
        if len(hits) >= self.per_minute:
            return max(hits[0] + 60 - now, 0.001)
        hits.append(now)
        if len(self._hits) > 10_000:  # forget idle clients
            self._hits = {k: v for k, v in self._hits.items() if v and v[-1] > now - 60}
        return 0.0


class BodyTooLarge(HTTPException):
    """The request body grew past the limit while it was being read (an HTTP 413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, detail=f"the request body is larger than {limit} bytes")


class PortalGuard:
    """ASGI middleware: body size, API key and rate limit for `/api/*` and `/v1/*`; body size and rate
    limit (per IP) for the web UI's sign-in, so API keys cannot be guessed there at speed."""

    def __init__(self, app: ASGIApp, portal: PortalSettings) -> None:
        self.app = app
        self.portal = portal
        self.limiter = RateLimiter(portal.rate_limit_per_minute)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        login = scope["type"] == "http" and scope["path"] in LOGIN_PATHS
        if not login and (scope["type"] != "http" or not scope["path"].startswith(GUARDED_PREFIXES)
                          or scope["method"] == "OPTIONS"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        rejection = self._reject(scope, headers, key_required=not login)
        if rejection is not None:
            status, body, extra_headers = rejection
            await send_json(send, status, body, extra_headers)
            return
        await self._forward_limited(scope, receive, send)

    def _reject(self, scope: Scope, headers: dict[str, str], *, key_required: bool = True
                ) -> tuple[int, dict[str, Any], list[tuple[str, str]]] | None:
        limit = self.portal.max_body_bytes
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > limit:
            return 413, too_large(limit), []
        key = presented_key(headers) if key_required else None
        address = f"ip:{(scope.get('client') or ('?',))[0]}"
        if self.portal.api_keys and key_required and (key is None or not key_is_valid(key, self.portal.api_keys)):
            # a failed authentication counts against the address's limit: keys cannot be guessed at speed
            if wait := self.limiter.check(address):
                return self._limited(wait)
            message, hint = (("an API key is required", "Send 'Authorization: Bearer KEY' or 'X-API-Key: KEY'.")
                             if key is None else
                             ("the API key is not valid", "Check the key with the portal's administrator."))
            return 401, error_body("Unauthorized", message, hint), [("www-authenticate", "Bearer")]
        client = f"key:{key}" if self.portal.api_keys and key else address
        if wait := self.limiter.check(client):
            return self._limited(wait)
        scope.setdefault("state", {})["client_id"] = client
        return None

    def _limited(self, wait: float) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        seconds = math.ceil(wait)
        return 429, error_body(
            "RateLimited", f"too many requests: the limit is {self.portal.rate_limit_per_minute} per minute",
            f"Retry in {seconds} s."), [("retry-after", str(seconds))]

    async def _forward_limited(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.portal.max_body_bytes
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await send_json(send, 413, too_large(limit), [])


def key_is_valid(key: str, api_keys: tuple[str, ...]) -> bool:
    """True if `key` is one of `api_keys` (compared in constant time)."""
    return any(hmac.compare_digest(key.encode(), k.encode()) for k in api_keys)


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The API key from `Authorization: Bearer KEY` or `X-API-Key`, if any."""
    authorization = headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return headers.get("x-api-key", "").strip() or None


def too_large(limit: int) -> dict[str, Any]:
    """The 413 body."""
    return error_body("PayloadTooLarge", f"the request body is larger than {limit} bytes",
                      "Send a shorter question and less history.")


async def send_json(send: Send, status: int, body: dict[str, Any], headers: list[tuple[str, str]]) -> None:
    """Answer with a JSON body (from an ASGI middleware)."""
    payload = json.dumps(body).encode()
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
                   *((k.encode(), v.encode()) for k, v in headers)]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": payload})


class JSONCORSMiddleware(CORSMiddleware):
    """Starlette's CORS middleware, with a JSON body when a preflight is rejected."""

    def preflight_response(self, request_headers: Headers) -> Response:
        """The preflight answer; a rejection carries {error, message, hint} (and no allow-origin)."""
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        headers = {k: v for k, v in response.headers.items() if k not in {"content-length", "content-type"}}
        return JSONResponse(error_body("CORSRejected", bytes(response.body).decode(errors="replace"),
                                       "Add the page's origin to OVPERF_CORS_ORIGINS."),
                            status_code=response.status_code, headers=headers)

"""Connection-level limits of the HTTP server: slow clients, and whose forwarded address to believe.

uvicorn waits forever for a request's headers and body and, by default, trusts `X-Forwarded-For` from
loopback. `uvicorn_options` makes `ovperf serve` give up on a client that has not sent its headers
within `read_timeout_s` (the connection is closed after a 408) and believe forwarded headers only from
`OVPERF_TRUSTED_PROXIES` (none by default, so per-address limits cannot be dodged by rotating the header);
`BodyDeadline` answers 408 when a body stalls for `read_timeout_s`.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import h11
from starlette.exceptions import HTTPException
from uvicorn.protocols.http.h11_impl import H11Protocol

from assistant.portal import ASGIApp, Message, PortalSettings, Receive, Scope, Send, error_body


def timeout_body(seconds: float) -> dict[str, Any]:
    """The JSON error of a request that was not received in time."""
    return error_body("RequestTimeout", f"the request was not received within {seconds:g} s",
                      "Send the whole request at once.")


class SlowClientProtocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for each request's headers (from the connection or the end of
    the previous response): a client that trickles them in is answered 408 and disconnected."""

    header_timeout: float = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Start the first request's header deadline."""
        super().connection_made(transport)
        self._header_deadline: asyncio.TimerHandle | None = None
        self._arm_header_deadline()

    def on_response_complete(self) -> None:
        """The next request on this connection gets its own deadline."""
        super().on_response_complete()
        self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        """No deadline outlives its connection."""
        self._cancel_header_deadline()
        super().connection_lost(exc)

    def _arm_header_deadline(self) -> None:
        self._cancel_header_deadline()
        if not self.transport.is_closing():
            self._header_deadline = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _cancel_header_deadline(self) -> None:
        deadline = getattr(self, "_header_deadline", None)
        if deadline is not None:
            deadline.cancel()
            self._header_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return  # the headers arrived: the request is the app's (BodyDeadline watches its body)
        payload = json.dumps(timeout_body(self.header_timeout)).encode()
        self.transport.write(b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
                             b"connection: close\r\ncontent-length: " + str(len(payload)).encode()
                             + b"\r\n\r\n" + payload)
        self.transport.close()


class BodyDeadline:
    """ASGI middleware: a request body that stalls for `seconds` between parts is answered 408."""

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body_done, started = False, False

        async def timed_receive() -> Message:
            nonlocal body_done
            if body_done:
                return await receive()  # after the body: waiting for a disconnect is not a stall
            try:
                message = await asyncio.wait_for(receive(), self.seconds)
            except TimeoutError:
                raise BodyStalled(self.seconds) from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, timed_receive, tracking_send)
        except BodyStalled:
            if not started:
                payload = json.dumps(timeout_body(self.seconds)).encode()
                await send({"type": "http.response.start", "status": 408,
                            "headers": [(b"content-type", b"application/json"), (b"connection", b"close"),
                                        (b"content-length", str(len(payload)).encode())]})
                await send({"type": "http.response.body", "body": payload})


class BodyStalled(HTTPException):
    """The client stopped sending its request body (an HTTP 408; FastAPI passes HTTPExceptions on)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(408, detail=timeout_body(seconds)["message"], headers={"Connection": "close"})


def uvicorn_options(portal: PortalSettings) -> dict[str, Any]:
    """uvicorn.Config options for serving the app: slow-client deadline and trusted proxies only."""
    protocol = type("SlowClientProtocol", (SlowClientProtocol,), {"header_timeout": portal.read_timeout_s})
    return {"http": protocol, "proxy_headers": bool(portal.trusted_proxies),
            "forwarded_allow_ips": list(portal.trusted_proxies) or None, "timeout_keep_alive": 5}

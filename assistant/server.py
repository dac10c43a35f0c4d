"""The HTTP front end: JSON API, OpenAI-compatible endpoint, embeddable widget, and the web UI at /.

Routes (design.md): POST /api/ask, GET /api/tools, POST /api/tools/{name}, GET /api/history,
GET /healthz, POST /v1/chat/completions, GET /v1/models, GET /widget.js, GET /demo.
The OpenAI wire format, including how `sources` travel, is described in `assistant.openai_api`.
Every error is JSON `{error, message, hint}`. Blocking Assistant calls run in worker threads
behind a fair queue (`assistant.fairqueue`); the generations of admitted requests join one running
batch (`assistant.engine`), and a request whose client goes away is cancelled at the next step.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import AsyncIterator, Iterator
from importlib import resources
from typing import Any, Literal

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from assistant import openai_api
from assistant.answer import DoneEvent, TokenEvent, ToolCall
from assistant.config import Settings
from assistant.core import clean_question
from assistant.edge import ResponseShape
from assistant.errors import (
    AssistantError,
    ConfigError,
    GenerationCancelled,
    InvalidQuestion,
    KnowledgeError,
    ModelError,
    RetrievalIndexError,
    ToolArgumentError,
    ToolBusy,
    ToolExecutionError,
    ToolsDisabled,
    UnknownTool,
)
from assistant.fairqueue import FairQueue, ServerBusy
from assistant.history import KINDS, History, HistoryError
from assistant.http_limits import BodyDeadline, uvicorn_options
from assistant.llm import cancel_scope
from assistant.portal import JSONCORSMiddleware, PortalGuard, PortalSettings, error_body
from assistant.runtime import Runtime
from assistant.tool_summary import summarize
from assistant.tools.policy import Caller, ToolPolicy
from assistant.ui_guard import LightFunctions, UIGuard

log = logging.getLogger(__name__)


STATUS_BY_ERROR: tuple[tuple[type[Exception], int], ...] = (
    (InvalidQuestion, 422), (ToolArgumentError, 422), (UnknownTool, 404), (ToolsDisabled, 403),
    (ToolBusy, 409), (ServerBusy, 503), (ModelError, 503), (KnowledgeError, 503),
    (RetrievalIndexError, 503), (HistoryError, 503), (ToolExecutionError, 500), (ConfigError, 500),
    (GenerationCancelled, 499),  # the client closed the connection; nobody reads this
)
"""HTTP status of each AssistantError type (the first match in MRO order wins); others are 500."""


def status_for(error: Exception) -> int:
    """The HTTP status for an AssistantError."""
    for cls in type(error).__mro__:
        for error_type, status in STATUS_BY_ERROR:
            if cls is error_type:
                return status
    return 500


class Turn(BaseModel):
    """One earlier turn of the conversation."""

    role: Literal["user", "assistant"]
    content: str


class AskRequest(BaseModel):
    """The body of POST /api/ask."""

    model_config = ConfigDict(extra="ignore")
    question: str
    history: list[Turn] = Field(default_factory=list, max_length=100)
    tools: Literal["run", "plan", "off"] | None = None
    id: str | None = Field(default=None, max_length=200)


class ErrorBody(BaseModel):
    """The JSON body of every API error."""

    model_config = ConfigDict(extra="allow")
    error: str = Field(description="error type, e.g. InvalidQuestion, ToolArgumentError, RateLimited")
    message: str
    hint: str | None = None


_ERROR_DESCRIPTIONS = {
    400: "The body could not be parsed (not UTF-8, or nested too deeply).",
    401: "An API key is required, or the key is not valid.",
    403: "Running tools through the API is switched off.",
    404: "No such tool.",
    409: "Another benchmark is running.",
    413: "The request body is larger than the limit.",
    422: "The request or the question or the tool arguments are invalid.",
    429: "Too many requests from this client (see Retry-After).",
    500: "The tool ran and failed.",
    503: "The server is busy, or the model or index is not available.",
}


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these error status codes (all share ErrorBody)."""
    return {code: {"model": ErrorBody, "description": _ERROR_DESCRIPTIONS[code]} for code in codes}


_GUARDED = (401, 413, 429)


def create_app(settings: Settings, *, assistant: Any = None, portal: PortalSettings | None = None,
               preload_model: bool = False, ui: bool | None = None) -> FastAPI:
    """The FastAPI app: API + OpenAI endpoint + widget, and the Gradio UI at / (unless disabled).

    `assistant` defaults to `Assistant.create(settings)`; `preload_model` starts loading the LLM in the
    background (state in /healthz and the UI); `ui` overrides `portal.ui_enabled`.
    """
    portal = portal or PortalSettings()
    runtime = Runtime.build(settings) if assistant is None else Runtime(assistant, settings)
    app = FastAPI(title="OpenVINO Performance Assistant", docs_url="/api/docs", redoc_url=None,
                  openapi_url="/api/openapi.json")
    app.state.runtime = runtime
    app.state.portal = portal
    app.state.queue = FairQueue(portal.max_active_requests, portal.max_queued_requests,
                                portal.max_active_per_client)
    app.state.tool_lock = threading.Lock()
    app.state.tool_policy = ToolPolicy.from_settings(settings, remote=portal.tools_enabled)
    _install_error_handlers(app)
    _add_routes(app, runtime, portal)
    app.add_middleware(PortalGuard, portal=portal)
    app.state.ui_light_functions = LightFunctions()
    app.add_middleware(UIGuard, portal=portal, light=app.state.ui_light_functions)
    app.add_middleware(BodyDeadline, seconds=portal.read_timeout_s)
    app.add_middleware(ResponseShape)
    if portal.cors_origins:  # added last: outermost, so 401/413/429 answers carry CORS headers too
        app.add_middleware(JSONCORSMiddleware, allow_origins=list(portal.cors_origins),
                           allow_credentials=False, allow_methods=["GET", "POST", "OPTIONS"],
                           allow_headers=["authorization", "content-type", "x-api-key"], max_age=600)
    if preload_model:
        runtime.preload()
    if portal.ui_enabled if ui is None else ui:
        from assistant.ui import mount_ui

        app = mount_ui(app, runtime, api_keys=portal.api_keys)
        for route in app.routes:  # the mounted Gradio app: its light functions are not rate-limited
            if hasattr(getattr(route, "app", None), "get_blocks"):
                app.state.ui_light_functions.learn(route.app.get_blocks())
    return app


def serve(settings: Settings, *, host: str = "127.0.0.1", port: int = 7860,
          portal: PortalSettings | None = None) -> None:
    """Build the app (portal settings from OVPERF_* env unless given) and run it with uvicorn."""
    import os

    import uvicorn

    portal = portal or PortalSettings.from_env(os.environ)
    if host not in {"127.0.0.1", "localhost", "::1"} and not portal.api_keys:
        log.warning("serving on %s without API keys: anyone who can reach it may use the API "
                    "(set OVPERF_API_KEYS)", host)
    app = create_app(settings, portal=portal, preload_model=True)
    log.info("serving on http://%s:%d", host, port)
    uvicorn.run(app, host=host, port=port, log_level="info", timeout_graceful_shutdown=5, **uvicorn_options(portal))


# -- routes -----------------------------------------------------------------------------------------------

def _add_routes(app: FastAPI, runtime: Runtime, portal: PortalSettings) -> None:
    assistant, settings = runtime.assistant, runtime.settings
    queue: FairQueue = app.state.queue
    policy: ToolPolicy = app.state.tool_policy

    def tools_mode(requested: str | None, front_end: str = "api") -> str:
        return policy.answer_mode(front_end, requested)

    def client_id(request: Request) -> str:
        state = request.scope.get("state") or {}
        return state.get("client_id") or f"ip:{request.client.host if request.client else '?'}"

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        """Liveness and what is loaded (never needs a key)."""
        return runtime.status()

    @app.post("/api/ask", responses=_errors(400, *_GUARDED, 422, 503))
    async def api_ask(body: AskRequest, request: Request) -> dict[str, Any]:
        """Answer one question: the answer JSON of design.md."""
        question = clean_question(body.question, max_chars=portal.max_question_chars)
        history = [turn.model_dump() for turn in body.history]
        caller = Caller(front_end="api", policy=policy)
        async with queue.slot(client_id(request)):
            answer = await until_disconnected(request, caller.cancel, lambda: assistant.ask(
                question, history=history, tools=tools_mode(body.tools), answer_id=body.id, caller=caller))
        return answer.to_dict()

    @app.get("/api/tools", responses=_errors(401, 429))
    async def api_tools() -> dict[str, Any]:
        """The tool declarations (JSON schemas) and whether the API may run them."""
        return {"tools": assistant.tools.schemas(), "enabled": policy.allows("api")}

    async def api_run_tool(name: str, request: Request) -> JSONResponse:
        """Run one tool with the JSON body as its arguments (validated against its schema)."""
        tool = assistant.tools.get(name)
        policy.check(name, "api")
        arguments = await _json_object(request)
        arguments = tool.validate(arguments, settings)
        call = await _run_tool(app, request, name, arguments, exclusive=tool.exclusive)
        data = {**call.to_dict(), "summary": summarize(call)}
        if call.status == "ok":
            return JSONResponse(data)
        error_type = getattr(call, "error_type", None) or "ToolExecutionError"
        status = {"ToolBusy": 409, "ToolArgumentError": 422, "ToolsDisabled": 403}.get(error_type, 500)
        return JSONResponse(error_body(error_type, call.error or f"{name} failed", None, tool_call=data),
                            status_code=status)

    # One documented route per tool, with the tool's JSON schema as its request body (OpenAPI 3.1 uses
    # JSON Schema); the generic route answers unknown names with a JSON 404.
    for tool in assistant.tools:
        app.add_api_route(
            f"/api/tools/{tool.name}", _tool_endpoint(api_run_tool, tool.name), methods=["POST"],
            summary=f"Run {tool.name}", description=tool.description, operation_id=f"run_tool_{tool.name}",
            responses=_errors(*_GUARDED, 403, 409, 422, 500),
            openapi_extra={"requestBody": {"required": bool(tool.parameters.get("required")),
                                           "description": "The tool's arguments (an empty body means {}).",
                                           "content": {"application/json": {"schema": dict(tool.parameters)}}}})
    app.add_api_route("/api/tools/{name}", api_run_tool, methods=["POST"], include_in_schema=False)

    @app.get("/api/history", responses=_errors(401, 422, 429, 503))
    async def api_history(request: Request, limit: int = Query(50, ge=0, le=1000),
                          kind: Literal[KINDS] | None = None) -> dict[str, Any]:
        """Stored benchmark runs, newest first; `kind` is one of the tools that record runs."""
        repeated = [name for name in ("limit", "kind") if len(request.query_params.getlist(name)) > 1]
        if repeated:  # FastAPI would silently take one of several values
            raise InvalidQuestion(f"query parameter {repeated[0]!r} is given more than once",
                                  hint="Pass each parameter once, e.g. /api/history?limit=20")
        runs = await run_in_threadpool(lambda: History(settings.history_db).list(limit=limit, kind=kind))
        return {"runs": runs}

    @app.get("/v1/models", responses=_errors(401, 429))
    async def v1_models() -> dict[str, Any]:
        """The OpenAI model list: one model, the assistant."""
        return openai_api.models_list(int(runtime.started_at))

    @app.post("/v1/chat/completions", response_model=None, responses={
        200: {"description": "A chat.completion object, or with `stream: true` server-sent "
                             "chat.completion.chunk events.",
              "content": {"application/json": {"schema": {"type": "object"}}, "text/event-stream": {}}},
        **_errors(400, *_GUARDED, 422, 503)})
    async def v1_chat(body: openai_api.ChatRequest, request: Request) -> dict[str, Any] | StreamingResponse:
        """OpenAI-compatible chat completion (see assistant.openai_api for the extra fields)."""
        cid, client = openai_api.completion_id(), client_id(request)
        if body.model == openai_api.RAW_MODEL_ID:
            return await _raw_generation(body, cid, client, request)
        question, history = body.question_and_history()
        question = clean_question(question, max_chars=portal.max_question_chars)
        caller = Caller(front_end="openai", policy=policy)
        kwargs = {"history": history, "tools": tools_mode(None, "openai"), "answer_id": cid, "caller": caller}
        if not body.stream:
            async with queue.slot(client):
                answer = await until_disconnected(request, caller.cancel, lambda: assistant.ask(question, **kwargs))
            return openai_api.completion(answer, cid=cid)
        if queue.waiting >= queue.max_waiting:
            raise ServerBusy(f"the server is busy ({queue.waiting} requests waiting)", hint="Retry shortly.")
        events = _chat_stream(queue, client, cid, lambda: assistant.stream(question, **kwargs), caller.cancel)
        return StreamingResponse(events, media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    async def _raw_generation(body: openai_api.ChatRequest, cid: str, client: str, request: Request) -> Any:
        """The bare LLM behind the fair queue: the seam for app replicas that use --llm-endpoint.
        Streamed piece by piece when asked; generation stops at the next step when the client goes away."""
        messages = body.raw_messages()
        for message in messages:
            clean_question(message["content"] or " ", max_chars=portal.max_question_chars * 4)
        options = {"max_new_tokens": body.max_tokens or settings.max_new_tokens, "stop": body.stop_list()}
        if body.stream:
            if queue.waiting >= queue.max_waiting:
                raise ServerBusy(f"the server is busy ({queue.waiting} requests waiting)", hint="Retry shortly.")
            return StreamingResponse(_raw_stream(queue, client, cid, assistant.llm, messages, options),
                                     media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        cancel = threading.Event()
        async with queue.slot(client):
            try:
                generation = await until_disconnected(request, cancel, lambda: assistant.llm().generate(
                    messages, cancel=cancel, **options))
            except GenerationCancelled:
                return Response(status_code=499)  # nobody is listening any more
        usage = {"prompt_tokens": generation.input_tokens, "completion_tokens": generation.output_tokens}
        return openai_api.raw_completion(generation.text, usage, cid=cid)

    @app.get("/widget.js", include_in_schema=False)
    async def widget_js() -> Response:
        """The embeddable chat bubble: `<script src=".../widget.js"></script>`."""
        return Response(_static("widget.js"), media_type="application/javascript; charset=utf-8",
                        headers={"Cache-Control": "public, max-age=300"})

    @app.get("/demo", include_in_schema=False)
    async def demo() -> Response:
        """A demo page that embeds the widget."""
        return Response(_static("demo.html"), media_type="text/html; charset=utf-8")

    @app.api_route("/api/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                   include_in_schema=False)
    @app.api_route("/v1/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                   include_in_schema=False)
    async def not_found(request: Request, path: str) -> JSONResponse:
        """JSON 404 (or 405) for unknown API paths, instead of falling through to the web UI."""
        allowed = {method for route in app.router.routes if isinstance(route, APIRoute)
                   and "{path:path}" not in route.path and route.path_regex.match(request.url.path)
                   for method in route.methods}
        if allowed:
            return JSONResponse(error_body("MethodNotAllowed", f"{request.method} is not allowed here",
                                           f"Use {', '.join(sorted(allowed))}."),
                                status_code=405, headers={"Allow": ", ".join(sorted(allowed))})
        return JSONResponse(error_body("NotFound", f"no such endpoint: {request.url.path}",
                                       "See /api/docs for the endpoints."), status_code=404)


def _tool_endpoint(run: Any, name: str) -> Any:
    """An endpoint for one tool's documented route (the tool name bound, the body read raw)."""

    async def endpoint(request: Request) -> JSONResponse:
        return await run(name, request)

    endpoint.__name__ = f"run_tool_{name}"
    return endpoint


async def _chat_stream(queue: FairQueue, client: str, cid: str, start, cancel: threading.Event
                       ) -> AsyncIterator[str]:
    """SSE chunks of one streamed answer; holds a queue slot while it runs; a client that goes away
    (the response is closed) cancels the answer's generation at its next step."""
    try:
        async with queue.slot(client):
            yield openai_api.sse(openai_api.chunk(cid, delta={"role": "assistant", "content": ""}))
            async for event in iterate_in_threadpool(_in_cancel_scope(start(), cancel)):
                if isinstance(event, TokenEvent) and event.text:
                    yield openai_api.sse(openai_api.chunk(cid, delta={"content": event.text}))
                elif isinstance(event, DoneEvent):
                    yield openai_api.sse(openai_api.chunk(cid, delta={}, finish_reason="stop"))
                    yield openai_api.sse(openai_api.chunk(cid, **openai_api.extras(event.answer)))
    except AssistantError as error:
        yield openai_api.sse({"error": {**error.to_dict(), "code": status_for(error)}})
    except Exception as error:  # the stream has started: report in-band, never a traceback
        log.exception("streamed answer failed")
        yield openai_api.sse(_internal_error(error))
    finally:
        cancel.set()  # a no-op after a complete answer; stops the generation of an abandoned one
    yield openai_api.sse("[DONE]")


async def _raw_stream(queue: FairQueue, client: str, cid: str, get_llm: Any, messages: list[dict[str, str]],
                      options: dict[str, Any]) -> AsyncIterator[str]:
    """SSE chunks of one bare-LLM generation, each piece as the engine produces it."""
    model = openai_api.RAW_MODEL_ID
    loop = asyncio.get_running_loop()
    pieces: asyncio.Queue[str | None] = asyncio.Queue()
    cancel = threading.Event()

    def work() -> Any:
        try:
            return get_llm().generate(messages, cancel=cancel, **options,
                                      on_token=lambda piece: loop.call_soon_threadsafe(pieces.put_nowait, piece))
        finally:
            loop.call_soon_threadsafe(pieces.put_nowait, None)

    try:
        async with queue.slot(client):
            yield openai_api.sse(openai_api.chunk(cid, delta={"role": "assistant", "content": ""}, model=model))
            task = asyncio.ensure_future(run_in_threadpool(work))
            while (piece := await pieces.get()) is not None:
                yield openai_api.sse(openai_api.chunk(cid, delta={"content": piece}, model=model))
            generation = await task
            usage = {"prompt_tokens": generation.input_tokens, "completion_tokens": generation.output_tokens}
            usage["total_tokens"] = sum(usage.values())
            yield openai_api.sse(openai_api.chunk(cid, delta={}, finish_reason="stop", model=model, usage=usage))
    except AssistantError as error:
        yield openai_api.sse({"error": {**error.to_dict(), "code": status_for(error)}})
    except Exception as error:
        log.exception("streamed generation failed")
        yield openai_api.sse(_internal_error(error))
    finally:
        cancel.set()
    yield openai_api.sse("[DONE]")


def _internal_error(error: Exception) -> dict[str, Any]:
    return {"error": {"error": "InternalError", "code": 500, "message": f"unexpected error ({type(error).__name__})",
                      "hint": "See the server log."}}


def _in_cancel_scope(events: Iterator[Any], cancel: threading.Event) -> Iterator[Any]:
    """`events`, each produced inside `cancel_scope(cancel)` (each step may run in another worker thread)."""
    while True:
        with cancel_scope(cancel):
            try:
                event = next(events)
            except StopIteration:
                return
        yield event


DISCONNECT_POLL_S = 0.25
"""How often a running request checks whether its client is still there."""


async def until_disconnected(request: Request, cancel: threading.Event, work: Any) -> Any:
    """Run `work()` in a worker thread; set `cancel` as soon as the client goes away (the work, and any
    generation it starts, stops at its next check), and wait for it to end."""

    def scoped() -> Any:
        with cancel_scope(cancel):
            return work()

    task = asyncio.ensure_future(run_in_threadpool(scoped))
    try:
        while not task.done():
            await asyncio.wait({task}, timeout=DISCONNECT_POLL_S)
            if not task.done() and not cancel.is_set() and await request.is_disconnected():
                log.info("client of %s went away: cancelling", request.url.path)
                cancel.set()
    except asyncio.CancelledError:  # the server is stopping this request: stop the work too
        cancel.set()
        raise
    return task.result()


async def _run_tool(app: FastAPI, request: Request, name: str, arguments: dict[str, Any], *,
                    exclusive: bool) -> ToolCall:
    """Run a tool in a worker thread under the API's tool policy; cancel it when the client goes away."""
    runtime: Runtime = app.state.runtime
    lock: threading.Lock = app.state.tool_lock
    if exclusive and not lock.acquire(blocking=False):
        raise ToolBusy(f"another benchmark is running; {name} was not started",
                       hint="Wait for it to finish, then retry.")
    caller = Caller(front_end="api", policy=app.state.tool_policy)
    try:
        return await until_disconnected(request, caller.cancel,
                                        lambda: runtime.assistant.run_tool(name, arguments, caller=caller))
    finally:
        if exclusive:
            lock.release()


async def _json_object(request: Request) -> dict[str, Any]:
    """The request body as a JSON object ({} when empty); 422 otherwise."""
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ToolArgumentError(f"the request body is not valid JSON ({exc})",
                                hint="Send the tool's arguments as a JSON object.") from exc
    except RecursionError as exc:  # json's C decoder gives up on very deep nesting
        raise ToolArgumentError("the request body is nested too deeply",
                                hint="Send the tool's arguments as a flat JSON object.") from exc
    if not isinstance(value, dict):
        raise ToolArgumentError("the tool arguments must be a JSON object",
                                hint='For example {"model": "resnet-50", "seconds": 5}.')
    return value


def _static(name: str) -> bytes:
    return resources.files("assistant").joinpath("static", name).read_bytes()


# -- errors -----------------------------------------------------------------------------------------------

def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AssistantError)
    async def assistant_error(request: Request, error: AssistantError) -> JSONResponse:
        headers = {"Retry-After": "5"} if isinstance(error, ServerBusy) else None
        return JSONResponse(error.to_dict(), status_code=status_for(error), headers=headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse(_validation_body(error.errors()), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        names = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
                 405: "MethodNotAllowed", 408: "RequestTimeout", 413: "PayloadTooLarge", 429: "RateLimited"}
        hints = {400: "Send a JSON object (UTF-8, not nested deeply) with Content-Type: application/json.",
                 408: "Send the whole request at once."}
        return JSONResponse(error_body(names.get(error.status_code, f"HTTP{error.status_code}"),
                                       str(error.detail), hints.get(error.status_code)),
                            status_code=error.status_code, headers=getattr(error, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(error_body("InternalError", f"unexpected server error ({type(error).__name__})",
                                       "See the server log for details."), status_code=500)


def _validation_body(errors: Any) -> dict[str, Any]:
    """A readable 422 body from pydantic's error list."""
    problems = []
    for item in errors:
        if item.get("type") == "json_invalid":
            detail = (item.get("ctx") or {}).get("error", "")
            message = f"the request body is not valid JSON ({detail})" if detail else "invalid JSON body"
            return error_body("InvalidJSON", message,
                              "Send a JSON object with Content-Type: application/json.")
        if tuple(item.get("loc", ())) == ("body",) and item.get("type") in {"model_attributes_type", "dict_type",
                                                                             "missing"}:
            what = "is empty" if item.get("type") == "missing" else "must be a JSON object"
            return error_body("ValidationError", f"the request body {what}",
                              "Send a JSON object with Content-Type: application/json, e.g. "
                              '{"question": "How is latency measured?"}.')
        where = ".".join(str(p) for p in item.get("loc", ()) if p != "body") or "body"
        problems.append(f"{where}: {item.get('msg', 'invalid')}")
    return error_body("ValidationError", "; ".join(problems) or "the request is invalid",
                      "See /api/docs for the expected request body.")

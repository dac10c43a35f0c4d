"""The HTTP front end over real uvicorn servers on loopback: API contract, portal guards, OpenAI
compatibility (official `openai` client), gradio_client, widget. Catalog and refusal answers need
no LLM; tests that generate are marked `model`."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from live_server import LiveServer, web_settings

from assistant.config import Settings
from assistant.core import Assistant
from assistant.fairqueue import FairQueue, ServerBusy
from assistant.history import History
from assistant.portal import PortalSettings, RateLimiter
from assistant.server import create_app

CATALOG_QUESTION = "What is the input size of resnet-50?"
FAQ_QUESTION = "How is latency measured?"
KEY = "test-key-123"


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return web_settings(tmp_path_factory.mktemp("server"))


@pytest.fixture(scope="module")
def assistant(settings: Settings) -> Assistant:
    """One real Assistant (retriever, catalog, tools); its LLM loads only if a test generates."""
    return Assistant.create(settings)


def _serve(settings: Settings, assistant: Assistant, ui: bool = False, **portal: object) -> LiveServer:
    return LiveServer(create_app(settings, assistant=assistant, portal=PortalSettings(**portal), ui=ui))


@pytest.fixture(scope="module")
def open_server(settings: Settings, assistant: Assistant) -> Iterator[LiveServer]:
    """No keys, tools enabled, generous rate limit."""
    with _serve(settings, assistant, tools_enabled=True, rate_limit_per_minute=10_000) as server:
        yield server


@pytest.fixture(scope="module")
def portal_server(settings: Settings, assistant: Assistant) -> Iterator[LiveServer]:
    """API keys, CORS allow-list, small body limit, tools disabled (the public-portal defaults)."""
    with _serve(settings, assistant, api_keys=(KEY, "second-key"), cors_origins=("http://portal.example",),
                max_body_bytes=4096, max_question_chars=300, rate_limit_per_minute=10_000) as server:
        yield server


def _error(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) >= {"error", "message", "hint"}
    assert "Traceback" not in response.text
    return body


# -- the API contract -------------------------------------------------------------------------------------

def test_healthz_reports_status_and_model(open_server: LiveServer) -> None:
    body = httpx.get(f"{open_server.url}/healthz").json()
    assert body["status"] in {"ok", "loading"}
    assert isinstance(body["model_loaded"], bool)
    assert body["index_loaded"] is True


def test_ask_returns_the_answer_json(open_server: LiveServer) -> None:
    response = httpx.post(f"{open_server.url}/api/ask", json={"question": CATALOG_QUESTION, "id": "q1"})
    assert response.status_code == 200
    answer = response.json()
    assert answer["id"] == "q1" and answer["question"] == CATALOG_QUESTION
    assert "224x224" in answer["answer"] and answer["refused"] is False
    assert answer["sources"] and {"id", "title", "text", "score"} <= set(answer["sources"][0])
    assert answer["tool_calls"] == [] and "total" in answer["timings_ms"]


def test_out_of_scope_question_is_refused(open_server: LiveServer) -> None:
    answer = httpx.post(f"{open_server.url}/api/ask", json={"question": "Who won the 1998 World Cup?"}).json()
    assert answer["refused"] is True and answer["sources"] == []


def test_bad_json_is_422_with_a_message(open_server: LiveServer) -> None:
    response = httpx.post(f"{open_server.url}/api/ask", content=b'{"question": ',
                          headers={"content-type": "application/json"})
    body = _error(response, 422)
    assert body["error"] == "InvalidJSON" and "JSON" in body["message"]


@pytest.mark.parametrize(("payload", "words"), [
    ({}, "question"),
    ({"question": 42}, "question"),
    ({"question": "   "}, "empty"),
    ({"question": "ok?", "tools": "always"}, "tools"),
    ({"question": "ok?", "history": [{"role": "robot", "content": "x"}]}, "role"),
])
def test_invalid_requests_are_422_with_readable_messages(open_server: LiveServer, payload: dict,
                                                         words: str) -> None:
    body = _error(httpx.post(f"{open_server.url}/api/ask", json=payload), 422)
    assert words in body["message"]


def test_tools_are_listed_with_schemas(open_server: LiveServer) -> None:
    body = httpx.get(f"{open_server.url}/api/tools").json()
    names = {tool["name"] for tool in body["tools"]}
    assert {"run_benchmark", "benchmark_llm", "system_info"} <= names
    assert all(tool["parameters"]["type"] == "object" for tool in body["tools"])
    assert body["enabled"] is True


def test_unknown_tool_is_404(open_server: LiveServer) -> None:
    body = _error(httpx.post(f"{open_server.url}/api/tools/format_disk", json={}), 404)
    assert body["error"] == "UnknownTool" and "run_benchmark" in body["hint"]


def test_tool_runs_when_enabled(open_server: LiveServer) -> None:
    response = httpx.post(f"{open_server.url}/api/tools/system_info", json={}, timeout=60)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok" and body["result"]["cpu"]["logical_cores"] >= 1
    assert "CPU" in body["summary"]


@pytest.mark.parametrize(("arguments", "words"), [
    ({"model": "resnet-50", "seconds": 0}, "seconds"),
    ({"model": "resnet-50", "precision": "int3"}, "precision"),
    ({"model": "resnet-50; rm -rf /"}, "model"),
    ({"seconds": 5}, "model"),
])
def test_tool_arguments_are_validated_by_schema(open_server: LiveServer, arguments: dict, words: str) -> None:
    body = _error(httpx.post(f"{open_server.url}/api/tools/run_benchmark", json=arguments), 422)
    assert body["error"] == "ToolArgumentError" and words in body["message"]


def test_tool_body_must_be_a_json_object(open_server: LiveServer) -> None:
    url = f"{open_server.url}/api/tools/run_benchmark"
    assert _error(httpx.post(url, content=b"[1, 2]"), 422)["error"] == "ToolArgumentError"
    assert "JSON" in _error(httpx.post(url, content=b"{nope"), 422)["message"]


def test_unknown_api_paths_are_json_not_the_web_ui(open_server: LiveServer) -> None:
    assert _error(httpx.get(f"{open_server.url}/api/nothing-here"), 404)["error"] == "NotFound"
    assert _error(httpx.get(f"{open_server.url}/v1/embeddings"), 404)["error"] == "NotFound"
    body = _error(httpx.get(f"{open_server.url}/api/ask"), 405)
    assert "POST" in body["hint"]


def test_history_lists_stored_runs(open_server: LiveServer, settings: Settings) -> None:
    History(settings.history_db).add("run_benchmark", {"model": "resnet-50", "device": "CPU",
                                                       "hint": "latency", "precision": "fp32"},
                                     {"latency_ms": {"median": 9.3}, "throughput_fps": 104.0})
    runs = httpx.get(f"{open_server.url}/api/history", params={"limit": 5}).json()["runs"]
    assert runs[0]["model"] == "resnet-50" and runs[0]["result"]["throughput_fps"] == 104.0
    _error(httpx.get(f"{open_server.url}/api/history", params={"kind": "nope"}), 422)


def test_history_filters_every_recorded_kind(open_server: LiveServer, settings: Settings) -> None:
    """Each tool that records runs can be asked for by kind, the diffusion one included."""
    store = History(settings.history_db)
    ids = {"benchmark_diffusion": store.add("benchmark_diffusion",
                                            {"model": "Stable-Diffusion-V1-5", "device": "CPU", "precision": "int8"},
                                            {"seconds_per_image": 224.1, "seconds_per_step": 31.7}),
           "benchmark_llm": store.add("benchmark_llm",
                                      {"model": "DeepSeek-R1-Distill-Qwen-1.5B", "device": "CPU", "precision": "int4"},
                                      {"tokens_per_s": 9.78})}
    for kind, run_id in ids.items():
        response = httpx.get(f"{open_server.url}/api/history", params={"kind": kind, "limit": 0})
        assert response.status_code == 200, response.text
        runs = {run["id"]: run for run in response.json()["runs"]}
        assert {run["kind"] for run in runs.values()} == {kind} and run_id in runs
    diffusion = httpx.get(f"{open_server.url}/api/history", params={"kind": "benchmark_diffusion"}).json()["runs"][0]
    assert diffusion["model"] == "Stable-Diffusion-V1-5" and diffusion["result"]["seconds_per_image"] == 224.1


def test_unexpected_errors_are_json_500_without_traceback(settings: Settings, assistant: Assistant,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret internal detail")

    with _serve(settings, assistant) as server:
        monkeypatch.setattr(assistant, "ask", broken)
        body = _error(httpx.post(f"{server.url}/api/ask", json={"question": CATALOG_QUESTION}), 500)
    assert body["error"] == "InternalError" and "secret" not in json.dumps(body)


def test_a_missing_model_degrades_health_and_fails_generation_cleanly(tmp_path_factory, settings: Settings
                                                                      ) -> None:
    """Catalog answers keep working; generated answers fail with a 503 JSON error (in-band when streamed)."""
    import openai

    broken = settings.replace(model=str(tmp_path_factory.mktemp("nomodel") / "missing.gguf"), auto_pull=False)
    with LiveServer(create_app(broken, preload_model=True, ui=False)) as server:
        deadline = time.monotonic() + 60
        while (health := httpx.get(f"{server.url}/healthz").json())["model"]["state"] == "loading":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert health["status"] == "degraded" and health["model_loaded"] is False
        assert health["model"]["error"]["message"]
        assert httpx.post(f"{server.url}/api/ask", json={"question": CATALOG_QUESTION}).status_code == 200
        body = _error(httpx.post(f"{server.url}/api/ask", json={"question": FAQ_QUESTION}), 503)
        assert body["error"] in {"ModelNotFound", "ModelError"}
        client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
        with pytest.raises(openai.APIError):
            list(client.chat.completions.create(model="ovperf-assistant", stream=True,
                                                messages=[{"role": "user", "content": FAQ_QUESTION}]))


# -- portal guards -----------------------------------------------------------------------------------------

def test_missing_or_wrong_key_is_401(portal_server: LiveServer) -> None:
    url = f"{portal_server.url}/api/ask"
    payload = {"question": CATALOG_QUESTION}
    missing = _error(httpx.post(url, json=payload), 401)
    assert "API key" in missing["message"]
    _error(httpx.post(url, json=payload, headers={"Authorization": "Bearer wrong"}), 401)
    _error(httpx.post(url, json=payload, headers={"X-API-Key": "wrong"}), 401)
    _error(httpx.get(f"{portal_server.url}/v1/models"), 401)
    assert httpx.post(url, json=payload, headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
    assert httpx.post(url, json=payload, headers={"X-API-Key": "second-key"}).status_code == 200
    assert httpx.get(f"{portal_server.url}/healthz").status_code == 200  # never needs a key
    assert httpx.get(f"{portal_server.url}/widget.js").status_code == 200


def test_oversize_body_is_413(portal_server: LiveServer) -> None:
    headers = {"X-API-Key": KEY}
    big = {"question": "x" * 10_000}
    body = _error(httpx.post(f"{portal_server.url}/api/ask", json=big, headers=headers), 413)
    assert "4096" in body["message"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit applies while reading
        yield b'{"question": "'
        for _ in range(10):
            yield b"y" * 1000
        yield b'"}'

    response = httpx.post(f"{portal_server.url}/api/ask", content=chunks(),
                          headers={**headers, "content-type": "application/json"})
    _error(response, 413)


def test_too_long_question_is_422(portal_server: LiveServer) -> None:
    body = _error(httpx.post(f"{portal_server.url}/api/ask", json={"question": "why " * 100},
                             headers={"X-API-Key": KEY}), 422)
    assert body["error"] == "InvalidQuestion" and "300" in body["message"]


def test_tools_disabled_is_403_and_ask_only_plans(portal_server: LiveServer) -> None:
    headers = {"X-API-Key": KEY}
    body = _error(httpx.post(f"{portal_server.url}/api/tools/run_benchmark",
                             json={"model": "resnet-50", "seconds": 1}, headers=headers), 403)
    assert body["error"] == "ToolsDisabled" and "OVPERF_API_TOOLS" in body["hint"]
    assert httpx.get(f"{portal_server.url}/api/tools", headers=headers).json()["enabled"] is False
    answer = httpx.post(f"{portal_server.url}/api/ask", headers=headers, timeout=60,
                        json={"question": "Benchmark resnet-50 for 2 seconds", "tools": "run"}).json()
    assert answer["tool_calls"] and answer["tool_calls"][0]["status"] == "planned"
    assert answer["tool_calls"][0]["result"] is None


def test_cors_header_only_for_allowed_origins(portal_server: LiveServer) -> None:
    url = f"{portal_server.url}/v1/models"
    headers = {"X-API-Key": KEY}
    good = httpx.get(url, headers={**headers, "Origin": "http://portal.example"})
    assert good.headers["access-control-allow-origin"] == "http://portal.example"
    evil = httpx.get(url, headers={**headers, "Origin": "http://evil.example"})
    assert evil.status_code == 200 and "access-control-allow-origin" not in evil.headers
    preflight = {"Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization,content-type"}
    ok = httpx.options(f"{portal_server.url}/api/ask", headers={**preflight, "Origin": "http://portal.example"})
    assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == "http://portal.example"
    assert "authorization" in ok.headers["access-control-allow-headers"].lower()
    rejected = httpx.options(f"{portal_server.url}/api/ask", headers={**preflight, "Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in rejected.headers
    _error(rejected, 400)
    unauthorized = httpx.get(url, headers={"Origin": "http://portal.example"})  # errors are readable too
    assert unauthorized.status_code == 401
    assert unauthorized.headers["access-control-allow-origin"] == "http://portal.example"


def test_rate_limit_is_429_with_retry_after(settings: Settings, assistant: Assistant) -> None:
    with _serve(settings, assistant, rate_limit_per_minute=3) as server:
        statuses = [httpx.get(f"{server.url}/api/tools").status_code for _ in range(3)]
        limited = httpx.get(f"{server.url}/api/tools")
        assert httpx.get(f"{server.url}/healthz").status_code == 200  # health checks are not limited
    assert statuses == [200, 200, 200]
    body = _error(limited, 429)
    assert 1 <= int(limited.headers["retry-after"]) <= 60 and "3 per minute" in body["message"]


def test_rate_limiter_window_slides() -> None:
    now = [0.0]
    limiter = RateLimiter(2, clock=lambda: now[0])
    assert limiter.check("a") == 0 and limiter.check("a") == 0
    assert limiter.check("a") == pytest.approx(60.0)
    assert limiter.check("b") == 0  # per client
    now[0] = 60.5
    assert limiter.check("a") == 0


def test_portal_settings_from_env() -> None:
    portal = PortalSettings.from_env({"OVPERF_API_KEYS": "a, b,", "OVPERF_CORS_ORIGINS": "https://x.example",
                                      "OVPERF_MAX_BODY_BYTES": "1000", "OVPERF_RATE_LIMIT": "7",
                                      "OVPERF_API_TOOLS": "1"})
    assert portal.api_keys == ("a", "b") and portal.cors_origins == ("https://x.example",)
    assert (portal.max_body_bytes, portal.rate_limit_per_minute, portal.tools_enabled) == (1000, 7, True)
    assert PortalSettings.from_env({}).tools_enabled is False
    with pytest.raises(Exception, match="OVPERF_RATE_LIMIT"):
        PortalSettings.from_env({"OVPERF_RATE_LIMIT": "lots"})


# -- fair queue ----------------------------------------------------------------------------------------------

def test_fair_queue_serves_clients_in_turn_and_bounds_waiting() -> None:
    async def scenario() -> list[str]:
        queue = FairQueue(slots=1, max_waiting=5)
        order: list[str] = []
        gate = asyncio.Event()

        async def request(client: str, label: str) -> None:
            async with queue.slot(client):
                order.append(label)
                await gate.wait()

        first = asyncio.create_task(request("a", "a0"))
        await asyncio.sleep(0)
        tasks = [asyncio.create_task(request(c, f"{c}{i}")) for c, i in
                 (("a", 1), ("a", 2), ("a", 3), ("b", 1), ("c", 1))]
        await asyncio.sleep(0)
        with pytest.raises(ServerBusy):
            await queue.acquire("d")
        gate.set()
        await asyncio.gather(first, *tasks)
        assert queue.active == 0 and queue.waiting == 0
        return order

    assert asyncio.run(scenario()) == ["a0", "a1", "b1", "c1", "a2", "a3"]


def test_fair_queue_limits_each_client_but_not_the_others() -> None:
    async def scenario() -> None:
        queue = FairQueue(slots=3, per_client=2)
        await queue.acquire("flood")
        await queue.acquire("flood")
        third = asyncio.create_task(queue.acquire("flood"))
        await asyncio.sleep(0)
        assert not third.done() and queue.waiting == 1  # a slot is free, but not for this client
        await asyncio.wait_for(queue.acquire("other"), 1)  # another client is admitted at once
        queue.release("flood")
        await asyncio.wait_for(third, 1)
        assert queue.active == 3 and queue.waiting == 0

    asyncio.run(scenario())


def test_fair_queue_survives_cancelled_waiters() -> None:
    async def scenario() -> None:
        queue = FairQueue(slots=1)
        await queue.acquire("a")
        waiter = asyncio.create_task(queue.acquire("b"))
        await asyncio.sleep(0)
        waiter.cancel()
        await asyncio.gather(waiter, return_exceptions=True)
        queue.release("a")
        assert queue.active == 0 and queue.waiting == 0
        await asyncio.wait_for(queue.acquire("c"), 1)

    asyncio.run(scenario())


# -- OpenAI compatibility, gradio_client, widget ------------------------------------------------------------

def test_openai_client_catalog_answer_streamed_and_not(open_server: LiveServer) -> None:
    import openai

    client = openai.OpenAI(base_url=f"{open_server.url}/v1", api_key="unused", max_retries=0)
    assert [m.id for m in client.models.list().data] == ["ovperf-assistant", "ovperf-llm"]
    completion = client.chat.completions.create(
        model="ovperf-assistant", messages=[{"role": "user", "content": CATALOG_QUESTION}])
    assert "224x224" in completion.choices[0].message.content
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model_extra["sources"][0]["title"] == "resnet-50"
    stream = client.chat.completions.create(
        model="ovperf-assistant", stream=True, messages=[{"role": "user", "content": CATALOG_QUESTION}])
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "224x224" in text
    assert chunks[-1].choices == [] and chunks[-1].model_extra["sources"]


def test_chat_completions_rejects_a_non_user_last_message(open_server: LiveServer) -> None:
    body = _error(httpx.post(f"{open_server.url}/v1/chat/completions",
                             json={"messages": [{"role": "user", "content": "hi"},
                                                {"role": "assistant", "content": "hello"}]}), 422)
    assert "user" in body["message"]
    _error(httpx.post(f"{open_server.url}/v1/chat/completions", json={"messages": []}), 422)


def test_chat_completions_with_a_key_through_the_openai_client(portal_server: LiveServer) -> None:
    import openai

    client = openai.OpenAI(base_url=f"{portal_server.url}/v1", api_key=KEY, max_retries=0)
    completion = client.chat.completions.create(
        model="anything", messages=[{"role": "user", "content": CATALOG_QUESTION}])
    assert "224x224" in completion.choices[0].message.content
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{portal_server.url}/v1", api_key="wrong", max_retries=0).models.list()


def test_gradio_client_calls_the_chat(settings: Settings, assistant: Assistant) -> None:
    from gradio_client import Client

    with _serve(settings, assistant, ui=True) as server:
        client = Client(f"{server.url}/", verbose=False)
        messages = client.predict(CATALOG_QUESTION, [], api_name="/chat")
    texts = [json.dumps(m["content"]) for m in messages]
    assert messages[0]["role"] == "user" and "224x224" in texts[1]
    assert any("Sources" in (m.get("metadata") or {}).get("title", "") for m in messages)


def test_with_api_keys_the_web_ui_needs_a_key_to_sign_in(settings: Settings, assistant: Assistant) -> None:
    from gradio_client import Client
    from gradio_client.exceptions import AuthenticationError

    with _serve(settings, assistant, ui=True, api_keys=(KEY,), rate_limit_per_minute=10_000) as server:
        assert httpx.get(f"{server.url}/config").status_code == 401
        with pytest.raises(AuthenticationError):
            Client(f"{server.url}/", verbose=False)
        with pytest.raises(ValueError, match="Could not login"):
            Client(f"{server.url}/", auth=("anyone", "not-the-key"), verbose=False)
        with httpx.Client(base_url=server.url) as browser:
            wrong = browser.post("/login", data={"username": "me", "password": "not-the-key"})
            assert wrong.status_code in (400, 401) and "access-token" not in "".join(wrong.cookies.keys())
            assert browser.get("/config").status_code == 401
            signed_in = browser.post("/login", data={"username": "me", "password": KEY})
            assert signed_in.status_code == 200
            assert browser.get("/config").status_code == 200
        client = Client(f"{server.url}/", auth=("anyone", KEY), verbose=False)
        messages = client.predict(CATALOG_QUESTION, [], api_name="/chat")
    assert "224x224" in json.dumps(messages[1]["content"])


def test_sign_in_attempts_are_rate_limited(settings: Settings, assistant: Assistant) -> None:
    with _serve(settings, assistant, ui=True, api_keys=(KEY,), rate_limit_per_minute=3) as server:
        codes = [httpx.post(f"{server.url}/login", data={"username": "me", "password": f"guess-{i}"}).status_code
                 for i in range(5)]
        assert codes[:3] != [429] * 3 and codes[3:] == [429, 429]
        assert httpx.get(f"{server.url}/config").status_code == 401  # other UI routes: Gradio's own check


def test_widget_and_demo_are_served(open_server: LiveServer) -> None:
    widget = httpx.get(f"{open_server.url}/widget.js")
    assert widget.status_code == 200 and "javascript" in widget.headers["content-type"]
    assert "/v1/chat/completions" in widget.text and "http://" not in widget.text.replace(
        "https://HOST", "")
    demo = httpx.get(f"{open_server.url}/demo")
    assert demo.status_code == 200 and 'src="widget.js"' in demo.text


# -- generation (real default LLM) --------------------------------------------------------------------------

@pytest.mark.model
def test_openai_client_gets_a_generated_answer(open_server: LiveServer) -> None:
    import openai

    client = openai.OpenAI(base_url=f"{open_server.url}/v1", api_key="unused", max_retries=0, timeout=300)
    messages = [{"role": "user", "content": FAQ_QUESTION}]
    completion = client.chat.completions.create(model="ovperf-assistant", messages=messages)
    text = completion.choices[0].message.content
    assert "synchronous" in text.lower() and "[1]" in text
    assert "Latency" in completion.model_extra["sources"][0]["title"]
    chunks = list(client.chat.completions.create(model="ovperf-assistant", messages=messages, stream=True))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == text  # greedy decoding: the same answer either way
    assert chunks[-1].choices == [] and chunks[-1].model_extra["sources"]


@pytest.mark.model
def test_catalog_answers_are_not_blocked_by_a_generation(open_server: LiveServer) -> None:
    """While one client streams a generated answer, another gets a catalog answer at once."""
    finished: dict[str, float] = {}

    def generate() -> None:
        payload = {"stream": True, "messages": [{"role": "user", "content": FAQ_QUESTION}]}
        with httpx.stream("POST", f"{open_server.url}/v1/chat/completions", json=payload, timeout=300) as r:
            for line in r.iter_lines():
                if '"content"' in line and "generation_started" not in finished:
                    finished["generation_started"] = time.monotonic()
        finished["generation"] = time.monotonic()

    httpx.post(f"{open_server.url}/api/ask", json={"question": FAQ_QUESTION}, timeout=300)  # load the model
    worker = threading.Thread(target=generate)
    worker.start()
    deadline = time.monotonic() + 60
    while "generation_started" not in finished and time.monotonic() < deadline:
        time.sleep(0.005)
    response = httpx.post(f"{open_server.url}/api/ask", json={"question": CATALOG_QUESTION}, timeout=60)
    finished["catalog"] = time.monotonic()
    worker.join()
    assert response.status_code == 200 and "224x224" in response.json()["answer"]
    assert finished["catalog"] <= finished["generation"]

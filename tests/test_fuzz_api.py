"""Fuzz the HTTP API from its own OpenAPI schema (schemathesis) against a real server on loopback.

Every documented operation gets a bounded number of generated requests (valid and invalid): none may
answer 5xx, and status codes, content types and bodies must match what the schema documents. Tools are
enabled here, with their real declarations and validation but stub functions, so a generated valid
`run_benchmark` call records its arguments instead of running benchmark_app; the recorded arguments must
satisfy the tool's schema.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import httpx
import jsonschema
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from live_server import LiveServer, web_settings
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance
from schemathesis.config import SchemathesisConfig
from spies import ProcessSpy

from assistant.core import Assistant
from assistant.portal import PortalSettings
from assistant.server import create_app
from assistant.tools.base import ToolRegistry

EXAMPLES = int(os.environ.get("OVPERF_FUZZ_EXAMPLES", "100"))
"""Generated requests per operation (schemathesis adds a few of its own edge cases)."""


class StubLLM:
    def generate(self, messages: Any, **_: Any) -> SimpleNamespace:
        return SimpleNamespace(text="The FAQ passage above answers it [1].", input_tokens=1, output_tokens=1)


@dataclasses.dataclass
class FuzzWorld:
    server: LiveServer
    assistant: Assistant
    spy: ProcessSpy
    tool_calls: list[tuple[str, dict[str, Any]]]


@pytest.fixture(scope="module")
def fuzz_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzWorld]:
    root = tmp_path_factory.mktemp("fuzz")
    settings_ = web_settings(root, models_dir=root / "models", bench_allowed_dirs=(root / "allowed",))
    assistant = Assistant.create(settings_, llm=StubLLM())
    calls: list[tuple[str, dict[str, Any]]] = []

    def stub(name: str):
        def run(arguments: dict[str, Any], ctx: Any) -> dict[str, Any]:
            calls.append((name, arguments))
            return {"stub": True, "arguments": arguments}
        return run

    assistant.tools = ToolRegistry(dataclasses.replace(tool, function=stub(tool.name)) for tool in assistant.tools)
    portal = PortalSettings(tools_enabled=True, rate_limit_per_minute=0, max_question_chars=2000)
    with pytest.MonkeyPatch.context() as monkeypatch:
        spy = ProcessSpy().install(monkeypatch)
        with LiveServer(create_app(settings_, assistant=assistant, portal=portal, ui=False)) as server:
            yield FuzzWorld(server, assistant, spy, calls)


CONFIG = """
[checks.negative_data_rejection]
# invalid data must be refused with a 4xx; 413 (the body limit) is a refusal too
expected-statuses = [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429, "5xx"]
"""


@pytest.fixture(scope="module")
def api_schema(fuzz_world: FuzzWorld):
    config = SchemathesisConfig.from_str(CONFIG)
    return schemathesis.openapi.from_url(f"{fuzz_world.server.url}/api/openapi.json", config=config)


OPERATIONS = [("GET", "/healthz"), ("POST", "/api/ask"), ("GET", "/api/tools"), ("POST", "/api/tools/run_benchmark"),
              ("POST", "/api/tools/benchmark_llm"), ("POST", "/api/tools/benchmark_diffusion"),
              ("POST", "/api/tools/system_info"), ("GET", "/api/history"),
              ("GET", "/v1/models"), ("POST", "/v1/chat/completions")]
FUZZED = {"requests": 0, "by_status": {}}


def test_every_documented_operation_is_fuzzed(api_schema) -> None:
    documented = {(op.method.upper(), op.path) for op in (r.ok() for r in api_schema.get_all_operations())}
    assert documented == set(OPERATIONS)


WITH_INPUT = {"/api/ask", "/api/tools/run_benchmark", "/api/tools/benchmark_llm", "/api/tools/benchmark_diffusion",
              "/api/tools/system_info",
              "/api/history", "/v1/chat/completions"}
"""Operations with a body or parameters; only those can be sent invalid data."""
RUNS = [(m, p, GenerationMode.POSITIVE) for m, p in OPERATIONS] + \
    [(m, p, GenerationMode.NEGATIVE) for m, p in OPERATIONS if p in WITH_INPUT]


@pytest.mark.parametrize(("method", "path", "mode"), RUNS,
                         ids=[f"{m} {p} {'valid' if g == GenerationMode.POSITIVE else 'invalid'}" for m, p, g in RUNS])
def test_api_conforms_to_its_schema_and_never_fails(api_schema, fuzz_world: FuzzWorld, method: str, path: str,
                                                    mode: GenerationMode) -> None:
    operation = api_schema[path][method]

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
              database=None)
    @given(case=operation.as_strategy(generation_mode=mode))
    def fuzz(case) -> None:
        # schema-valid requests may still be refused with a documented 422 (an unknown catalog model, a path
        # outside the allowed folders, an empty question): the schema cannot express those allow-lists
        response = case.call_and_validate(timeout=60, excluded_checks=[positive_data_acceptance])
        FUZZED["requests"] += 1
        FUZZED["by_status"][response.status_code] = FUZZED["by_status"].get(response.status_code, 0) + 1
        assert response.status_code < 500, response.text[:500]

    fuzz()


def test_after_fuzzing_the_server_is_healthy_and_nothing_unsafe_ran(fuzz_world: FuzzWorld) -> None:
    print(f"\nfuzzed requests: {FUZZED['requests']}, by status: {dict(sorted(FUZZED['by_status'].items()))}, "
          f"tool calls that passed validation: {len(fuzz_world.tool_calls)}")
    assert httpx.get(f"{fuzz_world.server.url}/healthz").json()["index_loaded"] is True
    assert fuzz_world.spy.benchmark_calls == []
    fuzz_world.spy.assert_no_shell()
    for name, arguments in fuzz_world.tool_calls:  # what reached a tool function passed its schema
        jsonschema.Draft202012Validator(dict(fuzz_world.assistant.tools.get(name).parameters)).validate(arguments)


def test_the_schema_documents_the_json_routes(fuzz_world: FuzzWorld) -> None:
    spec = httpx.get(f"{fuzz_world.server.url}/api/openapi.json").json()
    paths = spec["paths"]
    assert {"/api/ask", "/api/tools", "/api/history", "/v1/chat/completions", "/v1/models", "/healthz",
            "/api/tools/run_benchmark", "/api/tools/benchmark_llm", "/api/tools/system_info"} <= set(paths)
    body = paths["/api/tools/run_benchmark"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["model"] and body["additionalProperties"] is False
    assert paths["/api/ask"]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/AskRequest")
    error = spec["components"]["schemas"]["ErrorBody"]
    assert set(error["required"]) == {"error", "message"}
    assert paths["/api/ask"]["post"]["responses"]["422"]["content"]["application/json"]["schema"]["$ref"] \
        .endswith("/ErrorBody")

"""Scaling seam: an app replica sends generation to an OpenAI-compatible server (`--llm-endpoint`).

Tested against this project's own `/v1/chat/completions` (model `ovperf-llm`, the bare LLM) on loopback,
as a replica would use OpenVINO Model Server in production.
"""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from assistant.core import Assistant
from assistant.llm import RemoteLLM
from assistant.openai_api import RAW_MODEL_ID
from assistant.portal import PortalSettings
from assistant.server import create_app
from tests.live_server import LiveServer, web_settings

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def generation_server(tmp_path_factory) -> Iterator[LiveServer]:
    """The 'model server': a full app whose bare LLM is reachable as model ovperf-llm."""
    settings = web_settings(tmp_path_factory.mktemp("generation-server"))
    app = create_app(settings, assistant=Assistant.create(settings), portal=PortalSettings(), ui=False)
    with LiveServer(app) as server:
        yield server


def test_the_bare_llm_is_listed_and_answers_openai_clients(generation_server):
    client = openai.OpenAI(base_url=f"{generation_server.url}/v1", api_key="unused")
    assert RAW_MODEL_ID in {m.id for m in client.models.list().data}
    reply = client.chat.completions.create(model=RAW_MODEL_ID, max_tokens=8,
                                           messages=[{"role": "user", "content": "Say hello."}])
    assert reply.choices[0].message.content and reply.usage.completion_tokens <= 8


def test_a_replica_generates_through_the_endpoint(generation_server, tmp_path):
    settings = web_settings(tmp_path, llm_endpoint=f"{generation_server.url}/v1", model=RAW_MODEL_ID)
    replica = Assistant.create(settings)
    answer = replica.ask("Will there be new models added to the benchmark list?")
    assert isinstance(replica.llm(), RemoteLLM)
    assert answer.usage and answer.usage["completion_tokens"] > 0  # the remote model really generated
    assert "periodically" in answer.answer and "[1]" in answer.answer

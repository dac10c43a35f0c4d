"""The holes of issue 15, each shut and kept shut, over real servers on loopback: one tool policy for
every front end, the portal's limits on the web UI too, failed keys rate-limited, forwarded headers
trusted only from configured proxies, children that die with the server, cancellation on disconnect,
injected knowledge, and the smaller ones (exact tool names, device lists, slow clients, error shapes)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from gradio_raw import fn_index, queue_call
from live_server import LiveServer, web_settings
from spies import ProcessSpy

from assistant.config import PROJECT_ROOT, Settings
from assistant.core import Assistant
from assistant.history import History
from assistant.portal import PortalSettings
from assistant.server import create_app

BENCH_FORM = ["bench-run_benchmark-model", "bench-run_benchmark-device", "bench-run_benchmark-hint",
              "bench-run_benchmark-precision", "bench-run_benchmark-seconds"]
CHAT = ["chat-input", "chatbot"]
CONFIRM = [None, "chatbot"]


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return web_settings(tmp_path_factory.mktemp("security"))


@pytest.fixture(scope="module")
def assistant(settings: Settings) -> Assistant:
    """One real Assistant (retriever, catalog, tools); catalog and refusal answers need no LLM."""
    return Assistant.create(settings)


def _sibling(assistant: Assistant, settings: Settings) -> Assistant:
    """An Assistant over the same index and catalog with other settings (cheap: nothing is rebuilt)."""
    return Assistant(settings, retriever=assistant.retriever, catalog=assistant.catalog,
                     chunks=list(assistant.chunks.values()))


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> ProcessSpy:
    """Records every process started; benchmark processes are refused (a slipped run shows up here)."""
    return ProcessSpy().install(monkeypatch)


@pytest.fixture(scope="module")
def tools_off(settings: Settings, assistant: Assistant) -> Iterator[tuple[LiveServer, Settings]]:
    """OVPERF_TOOLS=off, the web UI mounted, no keys, and API tools *enabled*: off must win everywhere."""
    off = settings.replace(tools_mode="off", history_db=settings.cache_dir / "off-history.sqlite")
    app = create_app(off, assistant=_sibling(assistant, off), ui=True,
                     portal=PortalSettings(tools_enabled=True, rate_limit_per_minute=10_000))
    with LiveServer(app) as server:
        yield server, off


# -- 1. one tool policy for every front end -------------------------------------------------------------

def test_tools_off_stops_the_web_ui_benchmark_form(tools_off, spy: ProcessSpy) -> None:
    server, off = tools_off
    index = fn_index(server.url, BENCH_FORM)
    done = queue_call(server.url, index, ["resnet-50", "CPU", "latency", "fp32", 1])
    assert spy.benchmark_calls == []
    assert "switched off" in json.dumps(done["output"])
    assert History(off.history_db).list() == []


def test_tools_off_stops_the_chat_confirm(tools_off, spy: ProcessSpy) -> None:
    server, off = tools_off
    with httpx.Client() as http:
        session = "confirm-session"
        chat = queue_call(server.url, fn_index(server.url, CHAT, client=http),
                          ["Benchmark resnet-50 for 1 second", []], session=session, client=http)
        messages = chat["output"]["data"][0]
        queue_call(server.url, fn_index(server.url, CONFIRM, client=http), [None, messages], session=session,
                   client=http)
    assert spy.benchmark_calls == []
    assert History(off.history_db).list() == []


def test_tools_off_stops_the_api_even_with_api_tools_on(tools_off, spy: ProcessSpy) -> None:
    server, _ = tools_off
    refused = httpx.post(f"{server.url}/api/tools/run_benchmark", json={"model": "resnet-50", "seconds": 1})
    assert refused.status_code == 403 and refused.json()["error"] == "ToolsDisabled"
    assert "OVPERF_TOOLS" in refused.json()["hint"]
    assert httpx.get(f"{server.url}/api/tools").json()["enabled"] is False
    answer = httpx.post(f"{server.url}/api/ask", timeout=60,
                        json={"question": "Benchmark resnet-50 for 1 second", "tools": "run"}).json()
    assert answer["tool_calls"] and answer["tool_calls"][0]["status"] != "ok"
    assert answer["tool_calls"][0]["result"] is None
    assert spy.benchmark_calls == []


def test_the_policy_is_checked_where_the_tool_runs(settings: Settings, assistant: Assistant,
                                                   spy: ProcessSpy) -> None:
    off = _sibling(assistant, settings.replace(tools_mode="off"))
    call = off.run_tool("run_benchmark", {"model": "resnet-50", "seconds": 1})
    assert call.status == "error" and call.error_type == "ToolsDisabled"
    from assistant.tools.policy import Caller, ToolPolicy

    api = Caller(front_end="api", policy=ToolPolicy(mode="plan", remote=False))
    call = assistant.run_tool("run_benchmark", {"model": "resnet-50", "seconds": 1}, caller=api)
    assert call.status == "error" and call.error_type == "ToolsDisabled" and "OVPERF_API_TOOLS" in call.error
    assert spy.benchmark_calls == []


def test_tools_off_stops_the_cli_bench_command(tmp_path) -> None:
    env = {**os.environ, "OVPERF_TOOLS": "off", "OVPERF_CACHE_DIR": str(tmp_path), "PYTHONIOENCODING": "utf-8"}
    result = subprocess.run([sys.executable, "-m", "assistant.cli", "bench", "models/user/none.xml",
                             "--seconds", "1"], capture_output=True, env=env, timeout=300, cwd=PROJECT_ROOT)
    stderr = result.stderr.decode("utf-8", "replace")
    assert result.returncode != 0 and "switched off" in stderr and "Traceback" not in stderr


# -- 5. children die with the server; the slot sees a run left over by an earlier process ---------------

WORKER = Path(__file__).resolve().parent / "orphan_worker.py"


def _alive(pid: int) -> bool:
    """The process exists and is not a zombie (a container's init may be slow to reap)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in {"Z", "X"}


def _start_worker(cache: Path, mode: str) -> tuple[subprocess.Popen, list[int]]:
    worker = subprocess.Popen([sys.executable, str(WORKER), str(cache), mode], stdout=subprocess.PIPE,
                              text=True, cwd=PROJECT_ROOT)
    assert worker.stdout is not None
    line = worker.stdout.readline()
    assert line.startswith("CHILD"), line
    return worker, [int(part) for part in line.split() if part.isdigit()]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only")
def test_kill_9_of_the_server_kills_the_benchmark_process(tmp_path: Path) -> None:
    worker, (child,) = _start_worker(tmp_path, "child")
    try:
        assert _alive(child)
        worker.kill()
        worker.wait()
        deadline = time.monotonic() + 1.0
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not _alive(child), "the benchmark process outlived the server by more than a second"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="flock inheritance is POSIX")
def test_the_slot_stays_taken_while_a_run_of_a_killed_process_lives(tmp_path: Path) -> None:
    from assistant.errors import ToolBusy
    from assistant.tools.slot import exclusive

    worker, (child, grandchild) = _start_worker(tmp_path, "grandchild")
    try:
        worker.kill()
        worker.wait()
        assert _alive(grandchild)
        settings = Settings(cache_dir=tmp_path, history_db=tmp_path / "history.sqlite")
        with pytest.raises(ToolBusy, match=f"process {worker.pid}"), exclusive(settings):
            pass
        os.kill(grandchild, signal.SIGKILL)
        deadline = time.monotonic() + 2.0
        while _alive(grandchild) and time.monotonic() < deadline:
            time.sleep(0.02)
        with exclusive(settings):  # the run is over: the slot is free again
            pass
    finally:
        for pid in (child, grandchild):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

"""A bounded load test on loopback: concurrent clients against /api/ask and /v1/chat/completions (plain and
streamed) with a per-key rate limit. Expect no 5xx, no errors but the configured 429s (only for the clients
that exceed the limit), and stable memory; p50/p95/p99 latencies are printed and written to
tests/artifacts/load.json.

The server runs in its own process (tests/load_server.py), so its RSS is measured alone. The main test uses
a stub generator (retrieval, catalog, relevance gate, tool planning and the HTTP stack are real); the
`model` test repeats a smaller run with the real default LLM generating.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from assistant.config import PROJECT_ROOT

ARTIFACT = Path(__file__).parent / "artifacts" / "load.json"
RATE_LIMIT = 250  # per key per minute
TIME_CAP_S = 75  # every client stops by this time, whatever it has left

QUESTIONS: list[tuple[str, str]] = [  # (kind, question)
    ("catalog", "What is the input size of resnet-50?"),
    ("catalog", "Which task is yolov8n benchmarked for?"),
    ("aggregate", "Which models use a 128K input size?"),
    ("refusal", "Who won the 1998 World Cup?"),
    ("refusal", "What is a good recipe for lasagna?"),
    ("tool-plan", "Benchmark resnet-50 for throughput on my CPU"),
    ("faq", "How is latency measured?"),
    ("faq", "Where can I find the benchmark tool that was used?"),
]


@dataclass
class Sample:
    client: str
    endpoint: str
    kind: str
    started: float
    latency_ms: float
    status: int
    problem: str = ""


class Server:
    """tests/load_server.py in a subprocess on a free loopback port; stopped (SIGTERM, then SIGKILL) at exit."""

    def __init__(self, root: Path, *, llm: str, keys: list[str], rate_limit: int) -> None:
        self.log = open(root / "server.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("load_server.py")), str(root), "--llm", llm,
             "--keys", ",".join(keys), "--rate-limit", str(rate_limit)],
            stdout=subprocess.PIPE, stderr=self.log, text=True, cwd=PROJECT_ROOT)
        line = self.proc.stdout.readline()
        assert line, f"the load server did not start: {(root / 'server.log').read_text()[-2000:]}"
        info = json.loads(line)
        self.url, self.pid = f"http://127.0.0.1:{info['port']}", info["pid"]
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert self.proc.poll() is None and time.monotonic() < deadline, "the load server never listened"
            time.sleep(0.1)

    def rss(self) -> int:
        return psutil.Process(self.pid).memory_info().rss

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(15)
        self.proc.stdout.close()
        self.log.close()


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[Any]:
    servers: list[Server] = []

    def start(**kwargs: Any) -> Server:
        servers.append(Server(tmp_path, **kwargs))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def one_request(client: httpx.Client, name: str, number: int, questions: list[tuple[str, str]]) -> Sample:
    """The number-th request of a client: rotates over questions and over the three endpoint forms."""
    kind, question = questions[number % len(questions)]
    endpoint = ("ask", "chat", "chat-stream")[(number // len(questions)) % 3]
    started = time.monotonic()
    problem = ""
    if endpoint == "ask":
        response = client.post("/api/ask", json={"question": question, "tools": "plan"})
        status = response.status_code
        if status == 200:
            answer = response.json()
            problem = _check_answer(kind, answer["answer"], answer["refused"], answer["tool_calls"])
    elif endpoint == "chat":
        response = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": question}]})
        status = response.status_code
        if status == 200:
            body = response.json()
            problem = _check_answer(kind, body["choices"][0]["message"]["content"], body["refused"],
                                    body["server_tool_calls"])
    else:
        payload = {"stream": True, "messages": [{"role": "user", "content": question}]}
        with client.stream("POST", "/v1/chat/completions", json=payload) as response:
            status = response.status_code
            lines = [line for line in response.iter_lines() if line.startswith("data: ")]
        if status == 200:
            events = [json.loads(line[6:]) for line in lines[:-1]]
            text = "".join(c["delta"].get("content") or "" for e in events for c in e.get("choices", []))
            extras = events[-1] if events else {}
            if lines[-1:] != ["data: [DONE]"] or any("error" in e for e in events):
                problem = f"stream did not end cleanly: {lines[-2:]}"
            else:
                problem = _check_answer(kind, text, extras.get("refused"), extras.get("server_tool_calls"))
    if status == 429 and not response.headers.get("retry-after"):
        problem = "429 without Retry-After"
    return Sample(name, endpoint, kind, started, (time.monotonic() - started) * 1000, status, problem)


def _check_answer(kind: str, text: str, refused: Any, tool_calls: Any) -> str:
    """A wrong answer under load is an error too (e.g. a mixed-up response)."""
    expected = {"catalog": lambda: "224x224" in text or "detection" in text.lower(),
                "aggregate": lambda: "128K" in text,
                "refusal": lambda: refused is True,
                "tool-plan": lambda: bool(tool_calls) and tool_calls[0]["status"] == "planned",
                "faq": lambda: refused is False and "[1]" in text}[kind]
    return "" if expected() else f"unexpected {kind} answer: {text[:120]!r}"


def run_load(url: str, plan: dict[str, int], questions: list[tuple[str, str]], *, rss: Any,
             time_cap_s: float = TIME_CAP_S) -> tuple[list[Sample], list[tuple[float, int]], float]:
    """One thread per client (key -> number of requests); RSS of the server sampled meanwhile."""
    samples: list[Sample] = []
    lock = threading.Lock()
    stop_sampling = threading.Event()
    rss_samples: list[tuple[float, int]] = []
    start = time.monotonic()

    def client_loop(key: str, count: int) -> None:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=120) as client:
            for number in range(count):
                if time.monotonic() - start > time_cap_s:
                    return
                try:
                    sample = one_request(client, key, number, questions)
                except httpx.HTTPError as exc:
                    sample = Sample(key, "?", "?", time.monotonic(), 0.0, 0, f"{type(exc).__name__}: {exc}")
                with lock:
                    samples.append(sample)

    def sample_rss() -> None:
        while not stop_sampling.wait(0.2):
            rss_samples.append((time.monotonic() - start, rss()))

    sampler = threading.Thread(target=sample_rss, daemon=True)
    sampler.start()
    threads = [threading.Thread(target=client_loop, args=(key, count)) for key, count in plan.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(time_cap_s + 120)
    duration = time.monotonic() - start
    stop_sampling.set()
    sampler.join(5)
    return samples, rss_samples, duration


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))], 1)


def summarize(samples: list[Sample], rss_samples: list[tuple[float, int]], duration: float,
              config: dict[str, Any]) -> dict[str, Any]:
    ok = [s.latency_ms for s in samples if s.status == 200]
    quarter = duration / 4
    first = [r for t, r in rss_samples if t <= quarter] or [rss_samples[0][1]]
    last = [r for t, r in rss_samples if t >= 3 * quarter] or [rss_samples[-1][1]]
    rss_first, rss_last = statistics.mean(first), statistics.mean(last)
    by_endpoint = {endpoint: {"requests": len(lat), "p50_ms": percentile(lat, 50), "p95_ms": percentile(lat, 95)}
                   for endpoint in sorted({s.endpoint for s in samples})
                   if (lat := [s.latency_ms for s in samples if s.endpoint == endpoint and s.status == 200])}
    return {
        "config": config,
        "requests": len(samples),
        "duration_s": round(duration, 2),
        "requests_per_s": round(len(samples) / duration, 1),
        "status": dict(sorted(Counter(str(s.status) for s in samples).items())),
        "errors_5xx": sum(1 for s in samples if s.status >= 500),
        "problems": [f"{s.client} {s.endpoint} {s.kind} {s.status}: {s.problem}" for s in samples if s.problem][:20],
        "latency_ms": {"p50": percentile(ok, 50), "p95": percentile(ok, 95), "p99": percentile(ok, 99),
                       "max": round(max(ok), 1) if ok else 0.0},
        "by_endpoint": by_endpoint,
        "rss_mb": {"first_quarter": round(rss_first / 2**20, 1), "last_quarter": round(rss_last / 2**20, 1),
                   "growth_pct": round(100 * (rss_last - rss_first) / rss_first, 2),
                   "samples": len(rss_samples)},
    }


def write_artifact(section: str, report: dict[str, Any]) -> None:
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(ARTIFACT.read_text()) if ARTIFACT.is_file() else {}
    data[section] = report
    ARTIFACT.write_text(json.dumps(data, indent=2))
    print(f"\nload ({section}): {json.dumps({k: report[k] for k in ('requests', 'status', 'latency_ms', 'rss_mb')})}")


def warm_up(url: str, key: str, questions: list[tuple[str, str]]) -> None:
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=300) as client:
        for number in range(3 * len(questions)):  # every question through every endpoint form once
            sample = one_request(client, key, number, questions)
            assert sample.status == 200 and not sample.problem, sample


def test_load_with_rate_limit(server_factory) -> None:
    limit = 60  # per key per minute: small, so the greedy clients cross it early on any machine
    normal = {f"client-{i}": int(os.environ.get("OVPERF_LOAD_REQUESTS", "40")) for i in range(6)}
    greedy = {f"greedy-{i}": limit + 40 for i in range(2)}  # over the limit by 40
    assert max(normal.values()) < limit
    server = server_factory(llm="stub", keys=[*normal, *greedy, "warm-up"], rate_limit=limit)
    warm_up(server.url, "warm-up", QUESTIONS)
    samples, rss_samples, duration = run_load(server.url, {**normal, **greedy}, QUESTIONS, rss=server.rss)
    report = summarize(samples, rss_samples, duration,
                       {"clients": len(normal) + len(greedy), "rate_limit_per_minute": limit,
                        "plan": {**normal, **greedy}, "llm": "stub"})
    write_artifact("retrieval_catalog_refusal", report)
    assert httpx.get(f"{server.url}/healthz").status_code == 200
    assert report["errors_5xx"] == 0, report
    assert report["problems"] == [], report["problems"]
    assert set(report["status"]) <= {"200", "429"}, report["status"]
    for name in normal:  # clients within the limit never see a 429
        assert {s.status for s in samples if s.client == name} == {200}, name
    for name in greedy:
        mine = sorted((s for s in samples if s.client == name), key=lambda s: s.started)
        statuses = Counter(s.status for s in mine)
        assert statuses[200] >= limit, (name, statuses)
        # a sliding window: once more than the limit were asked within a minute, one of them is refused
        # (5 s of margin for the time between the client's clock and the server's)
        if len(mine) > limit and mine[limit].started - mine[0].started < 55:
            assert statuses[429] >= 1, (name, statuses)
        if duration < 55:  # the window did not move: exactly the limit got through
            assert statuses[200] == limit and statuses[429] == len(mine) - limit, (name, statuses)
    assert len(samples) == sum(normal.values()) + sum(greedy.values()), "a client stopped at the time cap"
    assert report["rss_mb"]["growth_pct"] < 10, report["rss_mb"]


@pytest.mark.model
def test_load_with_the_real_model_generating(server_factory) -> None:
    questions = [("faq", "How is latency measured?"), ("catalog", "What is the input size of resnet-50?"),
                 ("refusal", "Who won the 1998 World Cup?")]
    plan = {f"client-{i}": 3 for i in range(4)}
    server = server_factory(llm="real", keys=[*plan, "warm-up"], rate_limit=RATE_LIMIT)
    warm_up(server.url, "warm-up", questions)
    samples, rss_samples, duration = run_load(server.url, plan, questions, rss=server.rss, time_cap_s=120)
    report = summarize(samples, rss_samples, duration, {"clients": len(plan), "plan": plan, "llm": "default"})
    write_artifact("generation", report)
    assert report["errors_5xx"] == 0 and report["problems"] == [], report
    assert set(report["status"]) == {"200"}
    assert len(samples) == sum(plan.values())

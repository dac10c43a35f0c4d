"""Server concurrency: aggregate tokens/s and latency with 1, 2, 4 and 8 concurrent clients.

    python benchmarks/concurrency.py [--levels 1 2 4 8] [--requests 16] [--slots 16] [--no-stream]
                                     [--plain] [--llm-endpoint URL [--llm-model NAME]]

Starts the real server (FastAPI + uvicorn, no web UI) on a free loopback port with the default LLM,
then, per level, N clients send a fixed number of FAQ questions (which need generation) to
POST /v1/chat/completions (streamed by default). Generated tokens are counted inside the server
(the LLM's own output token count), so tokens/s is the model's aggregate decode output over the
level's wall time. Each client has its own API key (a separate user for the fair queue).
Alongside, a probe client asks catalog questions (no LLM) every 0.25 s to show
that they are not blocked by generations. The clients and the probe run in processes of their own
(benchmarks/load_clients.py), as real users would, so their work does not count as the server's.
Writes benchmarks/results/concurrency.json and prints a table.

The local LLM batches concurrent generations continuously (`assistant.engine`); `--plain` loads it without
prompt-lookup decoding, to compare the two at each load. With `--llm-endpoint` the server sends its
generation to that OpenAI-compatible server instead (e.g. OpenVINO Model Server, or another `ovperf serve`
with model `ovperf-llm`), and the same figures are measured through it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import uvicorn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant.config import Settings  # noqa: E402
from assistant.core import Assistant  # noqa: E402
from assistant.llm import load_llm  # noqa: E402
from assistant.portal import PortalSettings  # noqa: E402
from assistant.server import create_app  # noqa: E402
from benchmarks.load_clients import PROBE_KEY, QUESTIONS, client_key  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "concurrency.json"
LOAD_CLIENTS = ROOT / "benchmarks" / "load_clients.py"


class CountingLLM:
    """Wraps the real LLM and counts the tokens it generates (thread-safe)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.tokens = 0
        self.generations = 0
        self._lock = threading.Lock()

    def generate(self, messages: list[dict[str, str]], **options: Any) -> Any:
        """Generate with the wrapped LLM and count its output tokens, also of a generation its caller stopped
        (the assistant stops a sentence that already repeats itself): then its streamed pieces, one per token
        but for the rare token that completes no character."""
        caller_on_token, pieces = options.get("on_token"), 0

        def count(piece: str) -> None:
            nonlocal pieces
            pieces += 1
            caller_on_token(piece)

        if caller_on_token is not None:  # a caller that does not stream is not made to
            options = {**options, "on_token": count}
        try:
            generation = self.inner.generate(messages, **options)
        except Exception:
            with self._lock:
                self.tokens += pieces
            raise
        with self._lock:
            self.tokens += generation.output_tokens
            self.generations += 1
        return generation

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (nearest rank) of values, or None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return round(ordered[rank], 1)


def run_level(base: str, clients: int, requests: int, stream: bool, llm: CountingLLM) -> dict[str, Any]:
    """`clients` concurrent clients share `requests` questions; a probe asks catalog questions meanwhile.
    Both run in processes of their own (benchmarks/load_clients.py), not in the server's."""
    python = [sys.executable, str(LOAD_CLIENTS)]
    prober = subprocess.Popen([*python, "probe", base], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    tokens_before = llm.tokens
    load_before = os.getloadavg()[0]
    try:
        chat = subprocess.run([*python, "chat", base, "--clients", str(clients), "--requests", str(requests),
                               *(() if stream else ("--no-stream",))],
                              capture_output=True, text=True, check=True, timeout=3600)
    finally:
        probed, _ = prober.communicate("", timeout=120)  # closing its stdin stops the probe
    tokens = llm.tokens - tokens_before
    run = json.loads(chat.stdout)
    wall = run["ended"] - run["started"]
    results = run["results"]
    probes = [p["latency_ms"] for p in json.loads(probed)["probes"] if run["started"] <= p["at"] <= run["ended"]]
    latencies = [r["latency_ms"] for r in results]
    firsts = [r["first_content_ms"] for r in results]
    return {
        "clients": clients, "requests": len(results), "errors": sum(not r["ok"] for r in results),
        "wall_s": round(wall, 2), "generated_tokens": tokens,
        "tokens_per_s": round(tokens / wall, 1), "requests_per_s": round(len(results) / wall, 2),
        "latency_p50_ms": percentile(latencies, 50), "latency_p95_ms": percentile(latencies, 95),
        "first_content_p50_ms": percentile(firsts, 50), "first_content_p95_ms": percentile(firsts, 95),
        "catalog_probe_requests": len(probes), "catalog_probe_p95_ms": percentile(probes, 95),
        "loadavg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],  # other work on the machine
    }


def start_server(app: Any) -> tuple[str, uvicorn.Server, threading.Thread]:
    """Serve `app` on a free loopback port in a thread."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    return f"http://127.0.0.1:{sock.getsockname()[1]}", server, thread


def main(argv: Sequence[str] | None = None) -> None:
    """Run the levels, write the JSON results and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--requests", type=int, default=16, help="requests per level")
    parser.add_argument("--slots", type=int, default=PortalSettings().max_active_requests,
                        help="answers computed at once (the rest wait in the fair queue)")
    parser.add_argument("--no-stream", action="store_true", help="non-streamed completions")
    parser.add_argument("--plain", action="store_true",
                        help="local LLM without prompt-lookup decoding (as OVPERF_PROMPT_LOOKUP=0)")
    parser.add_argument("--llm-endpoint", help="measure through this OpenAI-compatible server's generation")
    parser.add_argument("--llm-model", default="ovperf-llm", help="model name at --llm-endpoint")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    settings = Settings.from_env(os.environ)
    if args.llm_endpoint:
        settings = dataclasses.replace(settings, llm_endpoint=args.llm_endpoint, model=args.llm_model)
    t0 = time.perf_counter()
    if args.plain:
        settings = dataclasses.replace(settings, prompt_lookup=False)
    llm = CountingLLM(load_llm(settings))
    assistant = Assistant.create(settings, llm=llm)
    load_s = time.perf_counter() - t0
    keys = (PROBE_KEY, *(client_key(i) for i in range(max(args.levels))))
    portal = PortalSettings(api_keys=keys, rate_limit_per_minute=0, max_active_requests=args.slots,
                            max_queued_requests=max(64, max(args.levels)))
    base, server, thread = start_server(create_app(settings, assistant=assistant, portal=portal, ui=False))
    try:
        # warm-up, not reported: every question once, so that every level starts from the same prefix cache
        run_level(base, 1, len(QUESTIONS), not args.no_stream, llm)
        levels = [run_level(base, n, args.requests, not args.no_stream, llm) for n in args.levels]
    finally:
        server.should_exit = True
        thread.join(timeout=15)

    report = {
        "benchmark": "concurrency", "endpoint": "/v1/chat/completions",
        "llm_backend": args.llm_endpoint or "local", "prompt_lookup": getattr(llm.inner, "prompt_lookup", None),
        "stream": not args.no_stream, "requests_per_level": args.requests, "slots": args.slots,
        "model": llm.name, "max_new_tokens": settings.max_new_tokens, "device": settings.device,
        "startup_s": round(load_s, 1), "cpu_count": os.cpu_count(), "platform": platform.platform(),
        "python": platform.python_version(), "levels": levels,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    lookup = "set by the endpoint" if report["prompt_lookup"] is None else report["prompt_lookup"]
    print(f"model {llm.name} ({report['llm_backend']}, prompt lookup {lookup}), "
          f"max_new_tokens {settings.max_new_tokens}, {os.cpu_count()} CPUs, "
          f"{args.requests} requests per level, {args.slots} slots, stream={not args.no_stream}")
    header = ("clients", "tokens/s", "req/s", "p50 ms", "p95 ms", "first p95", "catalog p95", "errors",
              "loadavg")
    print(" ".join(f"{h:>11}" for h in header))
    for r in levels:
        row = (r["clients"], r["tokens_per_s"], r["requests_per_s"], r["latency_p50_ms"], r["latency_p95_ms"],
               r["first_content_p95_ms"], r["catalog_probe_p95_ms"], r["errors"], r["loadavg_1m"][1])
        print(" ".join(f"{v!s:>11}" for v in row))
    base_rate = levels[0]["tokens_per_s"]
    for r in levels[1:]:
        ratio = r["tokens_per_s"] / base_rate if base_rate else 0.0
        print(f"{r['clients']} clients vs {levels[0]['clients']}: {ratio:.2f}x aggregate tokens/s")
    print(f"written to {args.output}")


if __name__ == "__main__":
    main()

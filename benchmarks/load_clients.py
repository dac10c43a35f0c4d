"""The simulated users of benchmarks/concurrency.py, in a process of their own.

    python benchmarks/load_clients.py chat BASE_URL --clients N --requests R [--no-stream]
    python benchmarks/load_clients.py probe BASE_URL          (asks until its stdin closes)

`chat`: N concurrent clients, each with its own API key, share R FAQ questions sent to
POST /v1/chat/completions. `probe`: one client asks catalog questions (no LLM) on /api/ask every 0.25 s.
Each prints one JSON object on stdout. They run apart from the server's process so that their own Python
work (parsing 8 token streams) does not share the server's GIL and show up as server latency, as it did
when they ran in the benchmark's process: catalog answers took 5-12 ms inside the assistant while the
probe measured up to 90 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import threading
import time
from typing import Any

import httpx

QUESTIONS = [
    "How is latency measured?",
    "How often are the performance benchmarks updated?",
    "How can I run the benchmark results on my own?",
    "Where can I find the models used for benchmarking?",
    "Why are INT8 models used for benchmarking on CPUs?",
    "What is the precision of the benchmarked models?",
    "How is throughput measured?",
    "Will there be any new models added to the list used for benchmarking?",
]
CATALOG_PROBES = ["What is the input size of resnet-50?", "Which task is yolov8n benchmarked for?",
                  "What is the input size of bert-base-cased?"]
PROBE_KEY = "bench-probe"
PROBE_INTERVAL_S = 0.25


def client_key(i: int) -> str:
    """The API key of simulated client i (each client is a separate user for the fair queue)."""
    return f"bench-client-{i}"


async def one_request(client: httpx.AsyncClient, key: str, question: str, stream: bool) -> dict[str, Any]:
    """Send one chat completion; return its latency, time to first content and status."""
    payload = {"model": "ovperf-assistant", "stream": stream,
               "messages": [{"role": "user", "content": question}]}
    headers = {"Authorization": f"Bearer {key}"}
    start = time.perf_counter()
    first = None
    if not stream:
        response = await client.post("/v1/chat/completions", json=payload, headers=headers)
        ok = response.status_code == 200 and bool(response.json()["choices"][0]["message"]["content"])
        total = (time.perf_counter() - start) * 1000
        return {"ok": ok, "latency_ms": total, "first_content_ms": total}
    ok = False
    async with client.stream("POST", "/v1/chat/completions", json=payload, headers=headers) as response:
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if chunk.get("error"):
                break
            if chunk["choices"] and chunk["choices"][0]["delta"].get("content") and first is None:
                first = (time.perf_counter() - start) * 1000
            if "sources" in chunk:
                ok = response.status_code == 200 and first is not None
    total = (time.perf_counter() - start) * 1000
    return {"ok": ok, "latency_ms": total, "first_content_ms": first if first is not None else total}


async def chat(base: str, clients: int, requests: int, stream: bool) -> dict[str, Any]:
    """`clients` concurrent clients share `requests` questions; their results and the wall-clock span."""
    todo: asyncio.Queue[str] = asyncio.Queue()
    for i in range(requests):
        todo.put_nowait(QUESTIONS[i % len(QUESTIONS)])
    results: list[dict[str, Any]] = []
    limits = httpx.Limits(max_connections=clients + 1)
    async with httpx.AsyncClient(base_url=base, timeout=600, limits=limits) as client:

        async def worker(key: str) -> None:
            while not todo.empty():
                results.append(await one_request(client, key, todo.get_nowait(), stream))

        started = time.time()
        await asyncio.gather(*(worker(client_key(i)) for i in range(clients)))
        return {"started": started, "ended": time.time(), "results": results}


def probe(base: str, stop: threading.Event) -> list[dict[str, float]]:
    """Catalog questions every PROBE_INTERVAL_S until `stop`; each answer's wall-clock time and latency."""
    probes = []
    with httpx.Client(base_url=base, timeout=60, headers={"Authorization": f"Bearer {PROBE_KEY}"}) as client:
        i = 0
        while not stop.is_set():
            at, start = time.time(), time.perf_counter()
            response = client.post("/api/ask", json={"question": CATALOG_PROBES[i % len(CATALOG_PROBES)]})
            if response.status_code == 200:
                probes.append({"at": at, "latency_ms": (time.perf_counter() - start) * 1000})
            i += 1
            stop.wait(PROBE_INTERVAL_S)
    return probes


def main(argv: list[str] | None = None) -> None:
    """Run the clients or the probe and print the JSON result."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("role", choices=["chat", "probe"])
    parser.add_argument("base")
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--no-stream", action="store_true")
    args = parser.parse_args(argv)
    if args.role == "chat":
        print(json.dumps(asyncio.run(chat(args.base, args.clients, args.requests, not args.no_stream))))
        return
    stop = threading.Event()

    def until_stdin_closes() -> None:
        sys.stdin.read()
        stop.set()

    threading.Thread(target=until_stdin_closes, daemon=True).start()
    print(json.dumps({"probes": probe(args.base, stop)}))


if __name__ == "__main__":
    main()

"""Serve the app in its own process for tests/test_load.py, so that its memory (RSS) is measured alone and the
load generator does not share its interpreter. Prints one JSON line {"port", "pid"} when it listens.

    python tests/load_server.py ROOT --llm stub|real --keys k1,k2 --rate-limit 100
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import uvicorn
from live_server import web_settings

from assistant.core import Assistant
from assistant.portal import PortalSettings
from assistant.server import create_app


class StubLLM:
    """A stand-in generator for load tests that are not about generation (one fixed, cited sentence)."""

    def generate(self, messages: Any, **_: Any) -> SimpleNamespace:
        return SimpleNamespace(text="The FAQ passage above answers it [1].", input_tokens=32, output_tokens=8)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("root", type=Path)
    parser.add_argument("--llm", choices=["stub", "real"], default="stub")
    parser.add_argument("--keys", default="")
    parser.add_argument("--rate-limit", type=int, default=60)
    args = parser.parse_args()
    settings = web_settings(args.root)
    assistant = Assistant.create(settings, llm=StubLLM() if args.llm == "stub" else None)
    if args.llm == "real":
        assistant.llm()  # load before listening: the test measures answers, not the model load
    portal = PortalSettings(api_keys=tuple(k for k in args.keys.split(",") if k),
                            rate_limit_per_minute=args.rate_limit, max_question_chars=2000)
    app = create_app(settings, assistant=assistant, portal=portal, ui=False)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    print(json.dumps({"port": sock.getsockname()[1], "pid": os.getpid()}), flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2))
    server.run(sockets=[sock])


if __name__ == "__main__":
    main()

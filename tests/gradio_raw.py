"""Raw Gradio protocol calls, the way an attacker makes them (no gradio_client): find a UI function by
the elem_ids of its inputs, join the queue with chosen data, read the event stream to the end."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx


def fn_index(base_url: str, input_elem_ids: list[str | None], *, client: httpx.Client | None = None) -> int:
    """The index of the first UI function whose inputs have these elem_ids (None for a gr.State)."""
    http = client or httpx.Client()
    config = http.get(f"{base_url}/config").json()
    elem = {c["id"]: c.get("props", {}).get("elem_id") for c in config["components"]}
    for dependency in config["dependencies"]:
        if [elem.get(i) for i in dependency["inputs"]] == input_elem_ids:
            return int(dependency["id"])
    raise LookupError(f"no UI function with inputs {input_elem_ids}")


def queue_call(base_url: str, index: int, data: list[Any], *, session: str | None = None,
               client: httpx.Client | None = None, timeout: float = 120) -> dict[str, Any]:
    """POST /gradio_api/queue/join, then read /gradio_api/queue/data to process_completed: its message."""
    http = client or httpx.Client()
    session = session or uuid.uuid4().hex[:10]
    joined = http.post(f"{base_url}/gradio_api/queue/join", timeout=timeout,
                       json={"data": data, "fn_index": index, "session_hash": session, "event_data": None,
                             "trigger_id": None})
    if joined.status_code != 200:
        return {"msg": "rejected", "status_code": joined.status_code, "body": joined.text}
    with http.stream("GET", f"{base_url}/gradio_api/queue/data", params={"session_hash": session},
                     timeout=timeout) as stream:
        for line in stream.iter_lines():
            if not line.startswith("data:"):
                continue
            message = json.loads(line[5:])
            if message.get("msg") == "process_completed":
                return message
    raise AssertionError("the event stream ended without process_completed")

"""Pure helpers of the web UI: chat messages for sources and tool cards, form fields from JSON
schemas, and benchmark history as tables for the plots. No Gradio import here."""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from assistant.answer import Source, ToolCall

HISTORY_COLUMNS = ["id", "date", "tool", "model", "device", "hint", "precision", "latency_median_ms",
                   "throughput_fps", "tokens_per_s", "series"]


def message_text(message: Mapping[str, Any]) -> str:
    """The text of a Gradio chat message (plain string or a list of content parts)."""
    content = message.get("content")
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, Mapping))
    if isinstance(content, Mapping):
        return str(content.get("text", ""))
    return content if isinstance(content, str) else ""


def chat_history(messages: list[Mapping[str, Any]]) -> list[dict[str, str]]:
    """The conversation for the Assistant: user/assistant turns without the source and tool cards."""
    turns = []
    for message in messages or []:
        if message.get("metadata") and (message["metadata"] or {}).get("title"):
            continue
        if message.get("role") in {"user", "assistant"} and (text := message_text(message).strip()):
            turns.append({"role": message["role"], "content": text})
    return turns


def sources_message(sources: list[Source]) -> dict[str, Any]:
    """An expandable chat message listing the cited FAQ sections with their scores."""
    lines = []
    for i, source in enumerate(sources, 1):
        body = source.text
        if body.startswith(source.title):
            body = body[len(source.title):].strip()
        excerpt = " ".join(body.split())[:320] + ("…" if len(body) > 320 else "")
        lines.append(f"**[{i}] {source.title}** · score {source.score:.2f}\n\n> {excerpt}")
    return {"role": "assistant", "content": "\n\n".join(lines),
            "metadata": {"title": f"Sources ({len(sources)})", "status": "done"}}


def format_arguments(arguments: Mapping[str, Any]) -> str:
    """`key=value` pairs of a tool call."""
    return ", ".join(f"{k}={v}" for k, v in arguments.items()) or "no arguments"


def planned_card(call: ToolCall) -> dict[str, Any]:
    """Chat card of a planned tool call: what will run."""
    return {"role": "assistant",
            "content": f"Will run `{call.name}` with {format_arguments(call.arguments)}.\n\n"
                       "Press **Confirm** below the chat to start it.",
            "metadata": {"title": f"Planned: {call.name}", "status": "done"}}


def progress_card(name: str, log: list[str], fraction: float, elapsed: float) -> dict[str, Any]:
    """Chat card of a running tool: progress bar and the last progress lines."""
    filled = int(max(0.0, min(fraction, 1.0)) * 20)
    bar = "█" * filled + "░" * (20 - filled)
    lines = "\n".join(log[-6:])
    return {"role": "assistant", "content": f"`{bar}` {fraction:.0%} · {elapsed:.0f} s\n\n```\n{lines}\n```",
            "metadata": {"title": f"Running {name}…", "status": "pending"}}


def result_card(call: ToolCall, elapsed: float) -> dict[str, Any]:
    """Chat card of a finished tool call: its arguments and raw result (the summary follows as text)."""
    ok = call.status == "ok"
    detail = json.dumps(call.result if ok else {"error": call.error}, indent=1, default=str)
    return {"role": "assistant",
            "content": f"Arguments: {format_arguments(call.arguments)}\n\n```json\n{detail[:3000]}\n```",
            "metadata": {"title": f"{'✔' if ok else '✖'} {call.name} {'finished' if ok else 'failed'}",
                         "status": "done", "duration": round(elapsed, 1)}}


@dataclass(frozen=True)
class Field:
    """One form field generated from a JSON-schema property."""

    name: str
    kind: str  # dropdown | integer | number | checkbox | text
    label: str
    default: Any = None
    choices: tuple[Any, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    required: bool = False
    info: str | None = None
    custom: bool = False  # dropdown accepts values outside the choices


def form_fields(parameters: Mapping[str, Any]) -> list[Field]:
    """Form fields for a tool's parameters: enums → dropdowns, integers → bounded numbers, ..."""
    required = set(parameters.get("required", ()))
    fields = []
    for name, spec in parameters.get("properties", {}).items():
        common = dict(name=name, label=name.replace("_", " "), default=spec.get("default"),
                      required=name in required, info=spec.get("description"))
        kind = spec.get("type")
        if "enum" in spec:
            fields.append(Field(kind="dropdown", choices=tuple(spec["enum"]), **common))
        elif spec.get("examples"):
            fields.append(Field(kind="dropdown", choices=tuple(spec["examples"]), custom=True, **common))
        elif kind in {"integer", "number"}:
            bounds = {"minimum": spec.get("minimum"), "maximum": spec.get("maximum")}
            fields.append(Field(kind=kind, **bounds, **common))
        elif kind == "boolean":
            fields.append(Field(kind="checkbox", **common))
        else:
            fields.append(Field(kind="text", **common))
    return fields


def arguments_from(fields: list[Field], values: tuple[Any, ...]) -> dict[str, Any]:
    """Tool arguments from form values: empty optional fields left out, integers as int."""
    arguments: dict[str, Any] = {}
    for field, value in zip(fields, values, strict=True):
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        if field.kind == "integer":
            value = int(value)
        elif isinstance(value, str):
            value = value.strip()
        arguments[field.name] = value
    return arguments


def history_frame(runs: list[Mapping[str, Any]]) -> pd.DataFrame:
    """Benchmark history as one row per run with the headline numbers (newest first)."""
    rows = []
    for run in runs:
        result = run.get("result") or {}
        latency = result.get("latency_ms")
        median = latency.get("median") if isinstance(latency, Mapping) else latency
        model, precision, hint = run.get("model") or "", run.get("precision") or "", run.get("hint") or ""
        rows.append({
            "id": run.get("id"), "date": pd.to_datetime(run.get("created_at"), utc=True, errors="coerce"),
            "tool": run.get("kind"), "model": model, "device": run.get("device") or "", "hint": hint,
            "precision": precision, "latency_median_ms": _number(median if median is not None
                                                                 else result.get("first_token_ms")),
            "throughput_fps": _number(result.get("throughput_fps")),
            "tokens_per_s": _number(result.get("tokens_per_s")),
            "series": " ".join(part for part in (model, precision, hint) if part),
        })
    frame = pd.DataFrame(rows, columns=HISTORY_COLUMNS)
    for column in ("latency_median_ms", "throughput_fps", "tokens_per_s"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    frame["date"] = pd.to_datetime(frame["date"], utc=True).dt.tz_localize(None)
    return frame


def history_figure(frame: pd.DataFrame) -> Any:
    """Median latency and throughput per run date, one line per workload/precision/hint series."""
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11, 3.6), layout="constrained")
    axes = figure.subplots(1, 2)
    panels = ((axes[0], "latency_median_ms", "Median latency (ms)"),
              (axes[1], "throughput_fps", "Throughput (FPS)"))
    for ax, column, title in panels:
        ax.set_title(title, fontsize=11)
        ax.grid(True, alpha=0.3)
        data = frame.dropna(subset=[column]).sort_values("date")
        for series, rows in data.groupby("series", sort=True):
            ax.plot(rows["date"], rows[column], marker="o", linewidth=1, label=str(series))
        if data.empty:
            ax.text(0.5, 0.5, "no runs yet", ha="center", va="center", transform=ax.transAxes, color="gray")
            ax.set_xticks([])
        else:
            locator = AutoDateLocator()
            ax.xaxis.set_major_locator(locator)
            ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
            ax.tick_params(axis="x", labelsize=8)
            ax.set_ylim(bottom=0)
    handles, labels = axes[0].get_legend_handles_labels()
    more_handles, more_labels = axes[1].get_legend_handles_labels()
    for handle, label in zip(more_handles, more_labels, strict=True):
        if label not in labels:
            handles.append(handle)
            labels.append(label)
    if labels:
        figure.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 4), fontsize=8)
    return figure


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def run_with_progress(assistant: Any, name: str, arguments: dict[str, Any], cancel: threading.Event,
                      tick: float = 0.5) -> Iterator[tuple[float, str] | ToolCall | None]:
    """Run a tool in a thread; yield (fraction, message) progress, None every `tick` s, then the ToolCall."""
    events: queue.Queue[tuple[float, str] | ToolCall] = queue.Queue()

    def work() -> None:
        def progress(fraction: float, message: str) -> None:
            events.put((fraction, message))

        events.put(assistant.run_tool(name, arguments, progress=progress, cancel=cancel))

    threading.Thread(target=work, name=f"ui-{name}", daemon=True).start()
    while True:
        try:
            item = events.get(timeout=tick)
        except queue.Empty:
            yield None
            continue
        yield item
        if isinstance(item, ToolCall):
            return

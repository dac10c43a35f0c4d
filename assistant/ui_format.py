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
DISPLAY_NAMES = {"latency_median_ms": "median ms", "throughput_fps": "FPS", "tokens_per_s": "tokens/s"}


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
    """An expandable chat message listing the cited sources, best first, with their scores."""
    lines = []
    for i, source in enumerate(sources, 1):
        body = source.text
        if body.startswith(source.title):
            body = body[len(source.title):].strip()
        excerpt = " ".join(body.split())[:320] + ("…" if len(body) > 320 else "")
        lines.append(f"**[{i}] {source.title}** · {source.score_label()}\n\n> {excerpt}")
    return {"role": "assistant", "content": "\n\n".join(lines),
            "metadata": {"title": f"Sources ({len(sources)})", "status": "done"}}


def format_arguments(arguments: Mapping[str, Any]) -> str:
    """`key=value` pairs of a tool call."""
    return ", ".join(f"{k}={v}" for k, v in arguments.items()) or "no arguments"


def planned_text(call: Mapping[str, Any]) -> str:
    """The tool card's text for a planned call: the tool and each argument, before Confirm/Dismiss."""
    arguments = " · ".join(f"{k} `{v}`" for k, v in (call.get("arguments") or {}).items())
    return f"**Run `{call.get('name')}` on this machine?**\n\n{arguments or 'no arguments'}"


def progress_card(name: str, log: list[str], fraction: float, elapsed: float) -> dict[str, Any]:
    """Chat card of a running tool: progress bar and the last progress lines."""
    filled = int(max(0.0, min(fraction, 1.0)) * 20)
    bar = "█" * filled + "░" * (20 - filled)
    lines = "\n".join(log[-6:])
    return {"role": "assistant", "content": f"`{bar}` {fraction:.0%} · {elapsed:.0f} s\n\n```\n{lines}\n```",
            "metadata": {"title": f"Running {name}…", "status": "pending"}}


def result_card(call: ToolCall, elapsed: float) -> dict[str, Any]:
    """Collapsed chat card of a finished tool call: arguments, exact command and raw result (the
    figures follow as their own message)."""
    ok = call.status == "ok"
    result = dict(call.result or {}) if ok else {"error": call.error}
    command = result.pop("command", None)
    detail = json.dumps(result, indent=1, default=str)
    parts = [f"Arguments: {format_arguments(call.arguments)}"]
    if command:
        parts.append(f"Command:\n```\n{' '.join(command) if isinstance(command, list) else command}\n```")
    parts.append(f"Result:\n```json\n{detail[:3000]}\n```")
    return {"role": "assistant", "content": "\n\n".join(parts),
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
            "precision": precision, "latency_median_ms": _number(
                median if median is not None else result.get("first_token_ms") if "first_token_ms" in result
                else 1000 * result["seconds_per_image"] if _number(result.get("seconds_per_image")) else None),
            "throughput_fps": _number(result.get("throughput_fps")),
            "tokens_per_s": _number(result.get("tokens_per_s")),
            "series": " ".join(part for part in (model, precision, hint) if part),
        })
    frame = pd.DataFrame(rows, columns=HISTORY_COLUMNS)
    for column in ("latency_median_ms", "throughput_fps", "tokens_per_s"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    frame["date"] = pd.to_datetime(frame["date"], utc=True).dt.tz_localize(None)
    return frame


def history_table(frame: pd.DataFrame) -> pd.DataFrame:
    """The history as shown: short column names, the date as text, no empty columns or plot keys."""
    table = frame.drop(columns=["id", "series"]).assign(date=frame["date"].dt.strftime("%Y-%m-%d %H:%M"))
    table = table.rename(columns=DISPLAY_NAMES)
    filled = table.notna() & table.ne("")
    keep = [c for c in table.columns if c in {"date", "tool", "model"} or filled[c].any()]
    return table[keep].round(2)


def history_figure(frame: pd.DataFrame, machine: str = "") -> Any:
    """Bars of the latest median latency and throughput per workload/precision/hint, side by side."""
    from matplotlib.figure import Figure

    latest = frame.sort_values("date").groupby("series", sort=True).tail(1).sort_values("series")
    runs = frame.groupby("series").size()
    height = 1.4 + 0.38 * max(len(latest), 1)
    figure = Figure(figsize=(11, height), layout="constrained")
    axes = figure.subplots(1, 2, sharey=True)
    panels = ((axes[0], "latency_median_ms", "Median latency (ms, lower is better)", "#0068b5"),
              (axes[1], "throughput_fps", "Throughput (FPS, higher is better)", "#2e8540"))
    labels = [f"{s}  (×{runs[s]})" if runs[s] > 1 else str(s) for s in latest["series"]]
    positions = range(len(latest))
    for ax, column, title, color in panels:
        ax.set_title(title, fontsize=10)
        ax.grid(True, axis="x", alpha=0.3)
        values = latest[column].tolist()
        bars = ax.barh(list(positions), [v if v == v else 0 for v in values], color=color, height=0.6)
        for bar, value in zip(bars, values, strict=True):
            text = "n/a" if value != value else f"{value:,.1f}"
            ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {text}", va="center", fontsize=8)
        ax.margins(x=0.18)
        if latest.empty:
            ax.text(0.5, 0.5, "no runs yet", ha="center", va="center", transform=ax.transAxes, color="gray")
            ax.set_xticks([])
    axes[0].set_yticks(list(positions), labels, fontsize=9)
    axes[0].invert_yaxis()
    figure.suptitle(f"Latest run per workload{f' on {machine}' if machine else ''}", fontsize=11)
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

"""Score the assistant on a question file (the format of shared/eval/dev.jsonl)."""

from __future__ import annotations

import json
import re
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.errors import AssistantError, InvalidQuestion

ANSWER_KINDS = ("faq", "catalog", "aggregate")


def normalize(text: str) -> str:
    """Lowercase; × and a lone x between numbers become 'x'; runs of spaces collapse; spaces around x go."""
    text = text.lower().replace("×", "x")
    text = re.sub(r"\s+", " ", text)
    return re.sub(r"(\d)\s*x\s*(\d)", r"\1x\2", text)


def fact_ok(answer: str, groups: list[list[str]]) -> bool:
    """Every group has one accepted spelling in the answer."""
    haystack = normalize(answer)
    squashed = haystack.replace(" ", "")
    return all(any(normalize(s) in haystack or normalize(s).replace(" ", "") in squashed for s in group)
               for group in groups)


def source_ok(sources: list[dict[str, Any]], needle: str, k: int = 3) -> bool:
    """A top-k source contains the expected text (case-insensitive)."""
    return any(needle.lower() in (s.get("text", "") + " " + s.get("title", "")).lower() for s in sources[:k])


def tool_ok(calls: list[dict[str, Any]], expected: dict[str, Any]) -> bool:
    """The first tool call has the expected name and argument subset (strings compared case-insensitively); the
    expected arguments are under "args" (the dev set's key) or "arguments" (the tool-call contract's)."""
    if not calls:
        return False
    call = calls[0]
    if call.get("name") != expected.get("name"):
        return False
    arguments = call.get("arguments") or {}
    for key, value in (expected.get("args") or expected.get("arguments") or {}).items():
        got = arguments.get(key)
        if isinstance(value, str) and isinstance(got, str):
            if value.lower() != got.lower():
                return False
        elif got != value:
            return False
    return True


@dataclass
class EvalReport:
    """Per-question results and the aggregate metrics."""

    rows: list[dict[str, Any]] = field(default_factory=list)

    def metrics(self) -> dict[str, Any]:
        """Recall@3, fact accuracy, refusal accuracy, tool routing accuracy, latency percentiles."""
        def rate(items: list[bool]) -> float | None:
            return round(sum(items) / len(items), 3) if items else None

        answerable = [r for r in self.rows if r["kind"] in ANSWER_KINDS]
        latencies = sorted(r["latency_ms"] for r in self.rows if r.get("latency_ms") is not None)
        per_kind = {}
        for kind in sorted({r["kind"] for r in self.rows}):
            rows = [r for r in self.rows if r["kind"] == kind]
            per_kind[kind] = {"n": len(rows), "passed": sum(r["passed"] for r in rows)}
        return {
            "questions": len(self.rows),
            "source_recall_at_3": rate([r["source_ok"] for r in answerable if r.get("source_ok") is not None]),
            "fact_accuracy": rate([r["facts_ok"] for r in answerable]),
            "catalog_fact_accuracy": rate([r["facts_ok"] for r in self.rows if r["kind"] in
                                           ("catalog", "aggregate")]),
            "refusal_accuracy": rate([r["refusal_ok"] for r in self.rows]),
            "tool_routing_accuracy": rate([r["tool_ok"] for r in self.rows if r["kind"] == "tool"]),
            "tool_calls_on_non_tool_questions": sum(1 for r in self.rows if r["kind"] != "tool" and r["n_calls"]),
            "latency_p50_ms": _percentile(latencies, 50),
            "latency_p95_ms": _percentile(latencies, 95),
            "by_kind": per_kind,
        }


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 1)
    return round(statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1], 1)


def load_questions(path: Path) -> list[dict[str, Any]]:
    """Read a JSONL question file; a bad line is an error naming the line."""
    rows = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise AssistantError(f"cannot read {path}: {exc}") from exc
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise AssistantError(f"{path}:{number}: not valid JSON ({exc.msg})") from exc
        if not isinstance(row, dict) or not isinstance(row.get("question"), str):
            raise AssistantError(f"{path}:{number}: each line needs a \"question\" string")
        rows.append(row)
    return rows


def evaluate(ask: Callable[[str], dict[str, Any]], questions: Iterable[dict[str, Any]],
             on_row: Callable[[dict[str, Any]], None] | None = None) -> EvalReport:
    """Ask every question through `ask` (question → answer JSON, tools planned) and score it."""
    report = EvalReport()
    for item in questions:
        kind = item.get("kind", "faq")
        started = time.perf_counter()
        try:
            answer = ask(item["question"])
            error = None
        except (AssistantError, InvalidQuestion) as exc:
            answer, error = {"answer": "", "sources": [], "tool_calls": [], "refused": False}, str(exc)
        latency = (time.perf_counter() - started) * 1000
        calls = answer.get("tool_calls") or []
        row: dict[str, Any] = {
            "id": item.get("id"), "kind": kind, "question": item["question"], "error": error,
            "latency_ms": latency, "n_calls": len(calls), "answer": answer.get("answer", ""),
            "refused": bool(answer.get("refused")),
        }
        row["facts_ok"] = fact_ok(row["answer"], item.get("facts") or []) and not row["refused"]
        needle = item.get("source_contains")
        row["source_ok"] = source_ok(answer.get("sources") or [], needle) if needle else None
        row["refusal_ok"] = row["refused"] == (kind == "out_of_scope")
        row["tool_ok"] = tool_ok(calls, item["tool"]) if kind == "tool" and item.get("tool") else not calls
        if kind == "tool":
            row["passed"] = row["tool_ok"]
        elif kind == "out_of_scope":
            row["passed"] = row["refusal_ok"] and not calls
        else:
            row["passed"] = row["facts_ok"] and row["source_ok"] is not False and not calls
        report.rows.append(row)
        if on_row:
            on_row(row)
    return report

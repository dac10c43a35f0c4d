"""Eval scoring: the rules of shared/eval/dev.jsonl, applied to answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.errors import AssistantError
from assistant.evaluation import evaluate, fact_ok, load_questions, normalize, source_ok, tool_ok


def test_normalisation_of_sizes_case_and_spaces():
    assert normalize("224 × 224") == normalize("224 X 224") == "224x224"
    assert fact_ok("Input: 224 x 224 pixels", [["224x224"]])
    assert fact_ok("It is 128K tokens", [["128k", "128 k"]])
    assert not fact_ok("It is 8K tokens", [["128k"]])


def test_every_group_must_match():
    groups = [["glm4"], ["qwen-2-7b", "qwen 2 7b"]]
    assert fact_ok("GLM4-9B-chat and Qwen-2-7B", groups)
    assert not fact_ok("GLM4-9B-chat only", groups)


def test_source_must_be_in_the_top_three():
    sources = [{"text": "a"}, {"text": "b"}, {"text": "c"}, {"text": "needle"}]
    assert not source_ok(sources, "needle")
    assert source_ok(sources[1:], "NEEDLE")


def test_tool_subset_match():
    calls = [{"name": "run_benchmark", "arguments": {"model": "resnet-50", "hint": "throughput", "device": "CPU"}}]
    assert tool_ok(calls, {"name": "run_benchmark", "args": {"model": "resnet-50", "device": "cpu"}})
    assert not tool_ok(calls, {"name": "run_benchmark", "args": {"hint": "latency"}})
    assert not tool_ok(calls, {"name": "system_info", "args": {}})
    assert not tool_ok([], {"name": "system_info", "args": {}})
    # the tool-call contract's own key is read as well
    assert tool_ok(calls, {"name": "run_benchmark", "arguments": {"model": "RESNET-50"}})
    assert not tool_ok(calls, {"name": "run_benchmark", "arguments": {"precision": "int8"}})


def test_evaluate_scores_each_kind(tmp_path: Path):
    questions = [
        {"id": "1", "kind": "faq", "question": "q1", "facts": [["sync"]], "source_contains": "mode"},
        {"id": "2", "kind": "out_of_scope", "question": "q2", "facts": []},
        {"id": "3", "kind": "tool", "question": "q3", "tool": {"name": "system_info", "args": {}}},
    ]
    answers = {
        "q1": {"answer": "Measured in sync mode", "sources": [{"text": "synchronous mode"}], "tool_calls": []},
        "q2": {"answer": "I cannot help", "refused": True, "sources": [], "tool_calls": []},
        "q3": {"answer": "", "sources": [], "tool_calls": [{"name": "system_info", "arguments": {}}]},
    }
    report = evaluate(lambda q: answers[q], questions)
    metrics = report.metrics()
    assert metrics["fact_accuracy"] == 1.0 and metrics["source_recall_at_3"] == 1.0
    assert metrics["refusal_accuracy"] == 1.0 and metrics["tool_routing_accuracy"] == 1.0
    answers["q2"]["refused"] = False
    assert evaluate(lambda q: answers[q], questions).metrics()["refusal_accuracy"] == pytest.approx(2 / 3, 0.01)


def test_load_questions_reports_the_bad_line(tmp_path: Path):
    path = tmp_path / "q.jsonl"
    path.write_text(json.dumps({"question": "ok"}) + "\n{broken\n")
    with pytest.raises(AssistantError, match=":2:"):
        load_questions(path)

"""The web UI's pure helpers: forms from tool schemas, chat history, cards, history tables."""

from __future__ import annotations

import pandas as pd

from assistant.answer import Source, ToolCall
from assistant.ui_format import (
    arguments_from,
    chat_history,
    form_fields,
    history_figure,
    history_frame,
    result_card,
    sources_message,
)

SCHEMA = {
    "type": "object",
    "properties": {
        "model": {"type": "string", "description": "workload"},
        "hint": {"type": "string", "enum": ["latency", "throughput"], "default": "latency"},
        "seconds": {"type": "integer", "minimum": 1, "maximum": 120, "default": 10},
        "device": {"type": "string", "examples": ["CPU", "GPU"], "default": "CPU"},
        "verbose": {"type": "boolean"},
    },
    "required": ["model"],
}


def test_form_fields_follow_the_schema() -> None:
    fields = {f.name: f for f in form_fields(SCHEMA)}
    assert fields["model"].kind == "text" and fields["model"].required
    assert fields["hint"].kind == "dropdown" and fields["hint"].choices == ("latency", "throughput")
    seconds = fields["seconds"]
    assert (seconds.kind, seconds.minimum, seconds.maximum) == ("integer", 1, 120)
    assert fields["device"].kind == "dropdown" and fields["device"].custom
    assert fields["verbose"].kind == "checkbox"


def test_arguments_from_form_values() -> None:
    fields = form_fields(SCHEMA)
    assert arguments_from(fields, (" resnet-50 ", "throughput", 5.0, "", None)) == {
        "model": "resnet-50", "hint": "throughput", "seconds": 5}


def test_chat_history_skips_cards_and_reads_content_parts() -> None:
    messages = [
        {"role": "user", "content": [{"type": "text", "text": "How is latency measured?"}]},
        {"role": "assistant", "content": "Synchronously [1]."},
        {"role": "assistant", "content": "…", "metadata": {"title": "Sources (1)"}},
    ]
    assert chat_history(messages) == [{"role": "user", "content": "How is latency measured?"},
                                      {"role": "assistant", "content": "Synchronously [1]."}]


def test_sources_message_shows_titles_and_scores() -> None:
    source = Source(id="faq#latency", title="How is latency measured?",
                    text="How is latency measured? Latency is measured in synchronous mode.", score=0.834)
    message = sources_message([source])
    assert message["metadata"]["title"] == "Sources (1)"
    assert "How is latency measured?" in message["content"] and "0.83" in message["content"]
    assert "synchronous mode" in message["content"]


def test_result_card_of_a_failed_call() -> None:
    card = result_card(ToolCall(name="run_benchmark", arguments={"model": "x"}, status="error",
                                error="boom"), 1.0)
    assert "failed" in card["metadata"]["title"] and "boom" in card["content"]


def test_history_frame_and_figure() -> None:
    runs = [
        {"id": 2, "kind": "benchmark_llm", "created_at": "2026-01-02T10:00:00+00:00", "model": "smollm2",
         "device": "CPU", "hint": None, "precision": None,
         "result": {"tokens_per_s": 95.5, "first_token_ms": 40.0}},
        {"id": 1, "kind": "run_benchmark", "created_at": "2026-01-01T10:00:00+00:00", "model": "resnet-50",
         "device": "CPU", "hint": "latency", "precision": "fp16",
         "result": {"latency_ms": {"median": 9.3}, "throughput_fps": 104}},
    ]
    frame = history_frame(runs)
    assert list(frame["latency_median_ms"]) == [40.0, 9.3]
    assert frame["throughput_fps"].isna().tolist() == [True, False]
    assert frame["series"].tolist() == ["smollm2", "resnet-50 fp16 latency"]
    assert pd.api.types.is_datetime64_any_dtype(frame["date"])
    figure = history_figure(frame)
    assert [ax.get_title() for ax in figure.axes] == ["Median latency (ms)", "Throughput (FPS)"]
    assert history_figure(history_frame([])).axes  # an empty history still draws

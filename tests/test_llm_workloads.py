"""Catalog LLMs built from their published architecture: data, GGUF writer, graphs, cache and fit check."""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import openvino as ov
import pytest

from assistant.config import PROJECT_ROOT, Settings
from assistant.errors import ToolArgumentError, ToolExecutionError
from assistant.fitcheck import WorkloadTooLarge, llm_need
from assistant.gguf_ir import _gguf_tensors
from assistant.gguf_writer import BLOCK_BYTES, Q4_0, Q8_0, write_gguf
from assistant.history import History
from assistant.tools import build_cache, llm_workloads
from assistant.tools.base import ToolContext
from assistant.tools.llm_bench import make_benchmark_llm_tool
from assistant.tools.llm_workloads import (
    LLM_WORKLOADS,
    architecture,
    cached_llm,
    ensure_llm_workload,
    gguf_metadata,
    gguf_tensors,
    is_llm_workload,
    llm_workload_dir,
)

# Total parameter counts the model cards / Hugging Face pages state (an independent check of the layer,
# width, head and vocabulary figures in llm_architectures.json), in billions.
PUBLISHED_PARAMETERS = {
    "DeepSeek-R1-Distill-Llama-8B": 8.03, "DeepSeek-R1-Distill-Qwen-1.5B": 1.78,
    "DeepSeek-R1-Distill-Qwen-7B": 7.62, "GLM4-9B-chat": 9.40, "Gemma-2-9B": 9.24, "Llama-2-7b-chat": 6.74,
    "Llama-3-8b": 8.03, "Llama-3.2-3B-Instruct": 3.21, "Mistral-7b-Instruct-V0.2": 7.24,
    "Phi3-4k-mini-Instruct": 3.82, "Qwen-2-7B": 7.62, "Qwen-2.5-7B-Instruct": 7.62,
}


def _no_llm():
    raise AssertionError("the assistant's LLM must not be loaded for this call")


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory) -> Path:
    """One models folder shared by the tiny builds of this module."""
    return tmp_path_factory.mktemp("models")


# -- the architecture data -----------------------------------------------------------------------------

def test_every_catalog_llm_has_an_architecture(catalog):
    llms = {entry.model for entry in catalog if entry.category == "llm"}
    assert set(LLM_WORKLOADS) == llms
    assert all(is_llm_workload(name) for name in llms) and not is_llm_workload("resnet-50")


@pytest.mark.parametrize("name", sorted(PUBLISHED_PARAMETERS))
def test_architecture_gives_the_published_parameter_count(name):
    arch = architecture(name)
    total = sum(arch.parameters().values()) / 1e9
    assert total == pytest.approx(PUBLISHED_PARAMETERS[name], rel=0.01)
    assert arch.source.startswith("https://huggingface.co/") and arch.source.endswith("config.json")
    assert arch.heads % arch.kv_heads == 0 and arch.family in {"llama", "qwen2"}


def test_unknown_llm_and_precision_are_refused_with_the_names():
    with pytest.raises(ToolArgumentError, match="Llama-3-8b"):
        architecture("llama-9")
    with pytest.raises(ToolArgumentError, match="int4, int8"):
        ensure_llm_workload("Llama-3-8b", "fp4", Path("/nonexistent"))


# -- the GGUF writer -----------------------------------------------------------------------------------

@pytest.mark.parametrize("precision", ["int4", "int8"])
def test_gguf_holds_every_tensor_at_its_offset_with_valid_scales(tmp_path, precision):
    arch = architecture("Qwen-2.5-7B-Instruct").tiny()
    specs = gguf_tensors(arch, precision)
    path = tmp_path / "m.gguf"
    size = write_gguf(path, gguf_metadata(arch, precision), specs)
    data, table = _gguf_tensors(path)  # the project's own reader, written independently of the writer
    assert size == path.stat().st_size == len(data)
    assert [(name, dims, kind) for name, kind, dims, _ in table] == [(s.name, s.dims, s.kind) for s in specs]
    for (name, kind, _dims, offset), spec in zip(table, specs, strict=True):
        assert offset + spec.nbytes <= size, name
        if kind in (Q4_0, Q8_0):
            blocks = np.asarray(data[offset:offset + spec.nbytes]).reshape(-1, BLOCK_BYTES[kind])
            scales = np.ascontiguousarray(blocks[:, :2]).view(np.float16)
            assert np.all(np.isfinite(scales)) and np.all(scales > 0), name
        else:
            values = np.asarray(data[offset:offset + spec.nbytes]).view("<f4")
            assert np.all(values == spec.fill), name
    projections = {Q4_0 if precision == "int4" else Q8_0}
    assert {kind for name, kind, _, _ in table if ".attn_q." in name and "weight" in name} == projections
    assert {kind for name, kind, _, _ in table if name == "token_embd.weight"} == {Q8_0}


# -- building each architecture (tiny) ----------------------------------------------------------------

def _weight_shapes(model: ov.Model) -> collections.Counter:
    """(rows, columns) of every 4/8-bit weight constant: openvino_genai stores them as [rows, groups, 32]."""
    shapes: collections.Counter = collections.Counter()
    for op in model.get_ops():
        if op.get_type_name() == "Constant" and op.get_output_element_type(0).bitwidth <= 8:
            shape = list(op.get_output_shape(0))
            if len(shape) == 3 and shape[2] == 32:
                shapes[(shape[0], shape[1] * 32)] += 1
    return shapes


def _expected_shapes(arch) -> collections.Counter:
    matrices = [spec.dims for spec in gguf_tensors(arch, "int4") if len(spec.dims) == 2]
    return collections.Counter((rows, columns) for columns, rows in matrices)


@pytest.mark.parametrize("name", LLM_WORKLOADS)
def test_tiny_build_has_the_architecture_graph_and_generates(tiny_models, name):
    import openvino_genai

    folder = ensure_llm_workload(name, "int4", tiny_models, tiny=True)
    arch = architecture(name).tiny()
    model = ov.Core().read_model(folder / "openvino_model.xml")
    ops = collections.Counter(op.get_type_name() for op in model.get_ops())
    assert ops["ReadValue"] == 2 * arch.layers  # one key and one value cache per layer
    assert ops["ScaledDotProductAttention"] == arch.layers
    assert _weight_shapes(model) == _expected_shapes(arch)
    if arch.qkv_bias:
        assert ops["Add"] > ops["ReadValue"] * 2  # q/k/v biases on top of the residual adds
    meta = json.loads((folder / "workload.json").read_text())
    assert meta["name"] == name and meta["precision"] == "int4" and "random" in meta["note"]
    pipeline = openvino_genai.LLMPipeline(str(folder), "CPU")
    config = pipeline.get_generation_config()
    config.max_new_tokens, config.ignore_eos = 5, True
    result = pipeline.generate(["A prompt of a few words"], config)
    assert result.perf_metrics.get_num_generated_tokens() == 5


def test_tiny_gemma_keeps_its_wide_heads(tiny_models):
    arch = architecture("Gemma-2-9B").tiny()
    assert arch.heads * arch.head_dim != arch.hidden_size  # 256-wide heads, as in Gemma-2
    model = ov.Core().read_model(ensure_llm_workload("Gemma-2-9B", "int4", tiny_models, tiny=True)
                                 / "openvino_model.xml")
    assert _weight_shapes(model)[(arch.heads * arch.head_dim, arch.hidden_size)] == arch.layers  # q_proj
    assert _weight_shapes(model)[(arch.vocab_size, arch.hidden_size)] == 1  # tied: one embedding matrix


def test_cached_build_is_reused(tiny_models):
    first = ensure_llm_workload("Llama-2-7b-chat", "int8", tiny_models, tiny=True)
    stamp = (first / "openvino_model.bin").stat().st_mtime_ns
    assert ensure_llm_workload("Llama-2-7b-chat", "int8", tiny_models, tiny=True) == first
    assert (first / "openvino_model.bin").stat().st_mtime_ns == stamp


def test_failed_build_leaves_nothing_in_the_cache(tmp_path, monkeypatch):
    def broken(gguf: Path) -> Path:
        raise ToolExecutionError("conversion failed on purpose")

    monkeypatch.setattr(llm_workloads, "gguf_to_ir", broken)
    with pytest.raises(ToolExecutionError, match="on purpose"):
        ensure_llm_workload("Mistral-7b-Instruct-V0.2", "int4", tmp_path, tiny=True)
    folder = llm_workload_dir(tmp_path, "Mistral-7b-Instruct-V0.2", "int4", tiny=True)
    assert not folder.exists() and list(folder.parent.iterdir()) == []


@pytest.mark.slow
def test_killed_build_leaves_no_cache_entry_and_is_cleaned_up(tmp_path):
    """A build killed while it writes its weights is never taken for a cached model."""
    code = ("import sys; from pathlib import Path; from assistant.tools.llm_workloads import ensure_llm_workload; "
            "ensure_llm_workload('Llama-2-7b-chat', 'int4', Path(sys.argv[1]))")
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    process = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], env=env)
    parent = llm_workload_dir(tmp_path, "Llama-2-7b-chat", "int4").parent
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(p.stat().st_size > 10**8 for p in parent.glob(".*/*.gguf")):
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert [p.name for p in parent.iterdir() if not p.name.startswith(".")] == []
    assert cached_llm(tmp_path, "Llama-2-7b-chat", "int4") is None
    build_cache.remove_abandoned_builds(parent)
    assert list(parent.iterdir()) == []


# -- fit check ----------------------------------------------------------------------------------------

def test_fit_check_refuses_before_anything_is_built(tmp_settings):
    settings = tmp_settings.replace(fit_memory_gb=2.0)
    tool = make_benchmark_llm_tool(_no_llm)
    with pytest.raises(WorkloadTooLarge) as caught:
        tool.validate({"model": "Llama-3-8b"}, settings)
    message = str(caught.value)
    need = llm_need("Llama-3-8b", "int4", tokens=128 + 64, built=False)
    assert f"Llama-3-8b in INT4 needs about {need.memory / 1e9:.1f} GB of memory" in message
    assert "this machine has 2.0 GB" in message and "DeepSeek-R1-Distill-Qwen-1.5B" not in message
    assert not (settings.models_dir / "workloads").exists()


def test_fit_check_names_the_llms_that_fit(tmp_settings):
    small = llm_need("DeepSeek-R1-Distill-Qwen-1.5B", "int4", tokens=192, built=False).memory / 1e9
    settings = tmp_settings.replace(fit_memory_gb=small + 0.1)
    with pytest.raises(WorkloadTooLarge, match=r"fit now in INT4: DeepSeek-R1-Distill-Qwen-1\.5B\.$"):
        make_benchmark_llm_tool(_no_llm).validate({"model": "Gemma-2-9B"}, settings)
    make_benchmark_llm_tool(_no_llm).validate({"model": "DeepSeek-R1-Distill-Qwen-1.5B"}, settings)


def test_fit_check_counts_the_disk(tmp_settings):
    settings = tmp_settings.replace(fit_disk_gb=1.0)
    with pytest.raises(WorkloadTooLarge, match="GB of free disk to build"):
        make_benchmark_llm_tool(_no_llm).validate({"model": "Phi3-4k-mini-Instruct"}, settings)


def test_int8_needs_more_than_int4():
    int4 = llm_need("Qwen-2-7B", "int4", tokens=256, built=False)
    int8 = llm_need("Qwen-2-7B", "int8", tokens=256, built=False)
    built = llm_need("Qwen-2-7B", "int4", tokens=256, built=True)
    assert int8.memory > 1.5 * int4.memory and built.memory < int4.memory and built.disk == 0


def test_cli_exits_non_zero_with_the_fit_message(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "OVPERF_MODELS_DIR": str(tmp_path / "models"),
           "OVPERF_CACHE_DIR": str(tmp_path / "cache"), "OVPERF_FIT_MEMORY_GB": "3"}
    run = subprocess.run([sys.executable, "-m", "assistant.cli", "bench-llm", "--model", "GLM4-9B-chat",
                          "--precision", "int8", "--json"], env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == WorkloadTooLarge.exit_code != 0
    assert "GLM4-9B-chat in INT8 needs about" in run.stderr and "Traceback" not in run.stderr
    assert run.stdout == "" and not (tmp_path / "models").exists()


# -- the tool's schema and arguments -------------------------------------------------------------------

def test_schema_offers_the_catalog_llms_and_precisions(catalog):
    properties = make_benchmark_llm_tool(_no_llm).schema["parameters"]["properties"]
    assert properties["model"]["examples"] == [e.model for e in catalog if e.category == "llm"]
    assert properties["precision"]["enum"] == ["int4", "int8"]


def test_precision_is_refused_for_a_model_path(tmp_settings):
    with pytest.raises(ToolArgumentError, match="catalog LLMs only"):
        make_benchmark_llm_tool(_no_llm).validate({"model": "user/m.gguf", "precision": "int8"}, tmp_settings)


# -- one real workload end to end ----------------------------------------------------------------------

@pytest.mark.slow
def test_deepseek_qwen_1_5b_is_built_and_measured(tmp_settings: Settings):
    tool = make_benchmark_llm_tool(_no_llm)
    arguments = tool.validate({"model": "DeepSeek-R1-Distill-Qwen-1.5B", "prompt_tokens": 32,
                               "max_new_tokens": 4, "iterations": 1}, tmp_settings)
    result = tool.function(arguments, ToolContext(settings=tmp_settings))
    assert result["workload"] == "DeepSeek-R1-Distill-Qwen-1.5B" and result["precision"] == "int4"
    assert result["input_tokens"] == 32 and result["output_tokens"] == 4 and result["built_now"]
    assert 0 < result["second_token_ms"] < result["first_token_ms"]
    assert result["weights"] == "random" and "timing holds" in result["note"]
    need = llm_need("DeepSeek-R1-Distill-Qwen-1.5B", "int4", tokens=36, built=True).memory / 2**20
    # peak_rss_mb is the whole process, which holds whatever earlier tests loaded: the workload adds the rest
    added = result["peak_rss_mb"] - result["rss_before_mb"]
    assert 0 < added < need, (result["peak_rss_mb"], result["rss_before_mb"], need)
    row = History(tmp_settings.history_db).list(limit=1)[0]
    assert row["config"]["precision"] == "int4" and row["config"]["model"] == "DeepSeek-R1-Distill-Qwen-1.5B"
    assert cached_llm(tmp_settings.models_dir, "DeepSeek-R1-Distill-Qwen-1.5B", "int4") is not None

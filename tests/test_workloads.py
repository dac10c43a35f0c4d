"""Offline workload builds: IR shapes and precisions, caching, atomic publication."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import openvino as ov
import pytest

from assistant.config import PROJECT_ROOT
from assistant.errors import ToolArgumentError
from assistant.tools import workloads
from assistant.tools.workloads import BUILDABLE, cached_ir, ensure_workload, unbuildable_reason, workload_dir


def _op_types(xml: Path) -> set[str]:
    return {op.get_type_name() for op in ov.Core().read_model(xml).get_ops()}


def _fake_ir(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "model.xml").write_text("<net/>")
    (folder / "model.bin").write_bytes(b"")
    return folder / "model.xml"


def test_buildable_set_is_in_the_catalog(catalog) -> None:
    for name in BUILDABLE:
        entry = catalog.find(name)
        assert entry is not None and entry.model == name


@pytest.mark.parametrize(("name", "expected"), [
    ("Llama-3-8b", "benchmark_llm"),
    ("Qwen-2.5-7B-Instruct", "benchmark_llm"),
    ("Stable-Diffusion-V1-5", "benchmark_diffusion"),
    ("FLUX.1-schnell", "bench-diffusion --model FLUX.1-schnell"),
])
def test_every_other_catalog_row_gets_an_explanation(catalog, name: str, expected: str) -> None:
    entry = catalog.find(name)
    assert entry is not None and entry.model not in BUILDABLE
    assert expected in unbuildable_reason(entry.model, entry.task)


def test_rejects_unknown_workload_and_precision(tmp_path: Path) -> None:
    with pytest.raises(ToolArgumentError) as info:
        ensure_workload("Llama-3-8b", "fp32", tmp_path)
    assert "resnet-50" in str(info.value)
    with pytest.raises(ToolArgumentError):
        ensure_workload("resnet-50", "int4", tmp_path)


def test_cache_hit_does_not_rebuild(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    xml = _fake_ir(workload_dir(tmp_path, "resnet-50", "fp16"))

    def must_not_build(*args, **kwargs):
        raise AssertionError("rebuilt a cached workload")

    monkeypatch.setattr(workloads, "build_workload", must_not_build)
    assert ensure_workload("resnet-50", "fp16", tmp_path) == xml


def test_failed_build_leaves_no_cache_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def half_build(name, precision, out_dir, progress=None):
        (Path(out_dir) / "model.xml").write_text("<net/>")  # .bin never written
        raise RuntimeError("conversion crashed")

    monkeypatch.setattr(workloads, "build_workload", half_build)
    with pytest.raises(RuntimeError):
        ensure_workload("mobilenet-v2", "fp32", tmp_path)
    assert cached_ir(tmp_path, "mobilenet-v2", "fp32") is None
    assert not workload_dir(tmp_path, "mobilenet-v2", "fp32").exists()
    assert list((tmp_path / "workloads").iterdir()) == []  # no staging leftovers


def test_half_written_cache_entry_is_not_a_hit(tmp_path: Path) -> None:
    folder = workload_dir(tmp_path, "resnet-50", "fp32")
    folder.mkdir(parents=True)
    (folder / "model.xml").write_text("<net/>")
    assert cached_ir(tmp_path, "resnet-50", "fp32") is None


@pytest.mark.slow
def test_mobilenet_builds_static_fp32_fp16_int8(tmp_path: Path) -> None:
    paths = {p: ensure_workload("mobilenet-v2", p, tmp_path) for p in ("fp32", "fp16", "int8")}
    for precision, xml in paths.items():
        assert xml == workload_dir(tmp_path, "mobilenet-v2", precision) / "model.xml"
        model = ov.Core().read_model(xml)
        [port] = model.inputs
        assert port.get_partial_shape().is_static
        assert list(port.get_shape()) == [1, 3, 224, 224]
    sizes = {p: xml.with_suffix(".bin").stat().st_size for p, xml in paths.items()}
    assert sizes["fp16"] < 0.6 * sizes["fp32"]
    assert "FakeQuantize" in _op_types(paths["int8"])
    assert "FakeQuantize" not in _op_types(paths["fp32"])
    before = paths["fp32"].stat().st_mtime_ns
    assert ensure_workload("mobilenet-v2", "fp32", tmp_path) == paths["fp32"]
    assert paths["fp32"].stat().st_mtime_ns == before


@pytest.mark.slow
def test_bert_and_resnet_build_with_catalog_sizes_from_the_command_line(tmp_path: Path) -> None:
    for name in ("bert-base-cased", "resnet-50"):
        done = subprocess.run(
            [sys.executable, "-m", "assistant.tools.workloads", name, "fp32", "--models-dir", str(tmp_path)],
            capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=600, check=False)
        assert done.returncode == 0, done.stderr[-2000:]
        xml = Path(done.stdout.strip().splitlines()[-1].removeprefix("IR: "))
        assert xml == workload_dir(tmp_path, name, "fp32") / "model.xml"
        model = ov.Core().read_model(xml)
        shapes = {p.get_any_name(): list(p.get_shape()) for p in model.inputs}
        if name == "bert-base-cased":
            assert shapes == {key: [1, 128] for key in ("input_ids", "attention_mask", "token_type_ids")}
            assert {p.get_any_name() for p in model.outputs} == {"start_logits", "end_logits"}
        else:
            assert shapes == {"pixel_values": [1, 3, 224, 224]}
            assert list(model.outputs[0].get_shape()) == [1, 1000]

"""run_benchmark: argument validation, allow-lists, real benchmark_app runs, busy/timeout/cancel."""

from __future__ import annotations

import fcntl
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from assistant.config import PROJECT_ROOT, Settings
from assistant.errors import ToolArgumentError, ToolBusy, ToolExecutionError
from assistant.history import History
from assistant.tools import default_registry
from assistant.tools.base import ToolContext
from assistant.tools.benchmark import (
    RUN_BENCHMARK,
    available_devices,
    make_run_benchmark_tool,
    parse_statistics,
    resolve_model,
    run_benchmark,
)
from assistant.tools.workloads import BUILDABLE, workload_dir
from assistant.ui_format import form_fields


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    allowed = tmp_path / "user"
    allowed.mkdir()
    return Settings(models_dir=tmp_path / "models", cache_dir=tmp_path / "cache",
                    history_db=tmp_path / "cache" / "history.sqlite", bench_allowed_dirs=(allowed,),
                    bench_max_seconds=30, tool_timeout_s=300)


@pytest.fixture(scope="session")
def built_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models dir with mobilenet-v2 fp32 built once (in a child process, like the tool does)."""
    models = tmp_path_factory.mktemp("models")
    done = subprocess.run(
        [sys.executable, "-m", "assistant.tools.workloads", "mobilenet-v2", "fp32",
         "--models-dir", str(models)],
        capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return models


@pytest.fixture
def bench_settings(settings: Settings, built_models: Path) -> Settings:
    return settings.replace(models_dir=built_models)


def _fake_ir(folder: Path, name: str = "model") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.xml").write_text("<net/>")
    (folder / f"{name}.bin").write_bytes(b"\0")
    return folder / f"{name}.xml"


def _validate(settings: Settings, **arguments) -> dict:
    return make_run_benchmark_tool(settings).validate(arguments, settings)


# -- schema and allow-lists ---------------------------------------------------------------------------

def test_defaults_and_exact_catalog_names(settings: Settings) -> None:
    args = _validate(settings, model="ResNet-50")
    assert args == {"model": "resnet-50", "device": "CPU", "hint": "latency", "precision": "fp32",
                    "seconds": 10}
    for alias, meant in (("resnet50", "resnet-50"), ("mobilenet v2", "mobilenet-v2"), ("bert", "bert-base-cased")):
        with pytest.raises(ToolArgumentError, match="unknown model") as info:  # the router resolves aliases
            _validate(settings, model=alias)
        assert meant in str(info.value)


def test_unknown_model_lists_valid_names(settings: Settings) -> None:
    with pytest.raises(ToolArgumentError) as info:
        _validate(settings, model="alexnet-9000")
    text = str(info.value)
    for name in ("resnet-50", "mobilenet-v2", "bert-base-cased"):
        assert name in text


@pytest.mark.parametrize(("model", "resembles"), [("resnet-101", "resnet-50"), ("mobilenet-v3", "mobilenet-v2")])
def test_another_model_of_a_family_is_not_run_in_its_place(settings: Settings, model: str, resembles: str) -> None:
    with pytest.raises(ToolArgumentError) as info:
        _validate(settings, model=model)
    assert f"unknown model {model!r}" in str(info.value) and resembles in str(info.value)


@pytest.mark.parametrize("model", ["Llama-3-8b", "Stable-Diffusion-V1-5"])
def test_unbuildable_catalog_models_explain_why(settings: Settings, model: str) -> None:
    with pytest.raises(ToolArgumentError) as info:
        _validate(settings, model=model)
    assert any(word in str(info.value) for word in ("benchmark_llm", "benchmark_diffusion", "path"))


@pytest.mark.parametrize("name", ["yolov8n", "ssd-resnet34-1200-onnx", "mask_rcnn_resnet50_atrous_coco"])
def test_detection_and_segmentation_workloads_are_benchmarkable(settings: Settings, name: str) -> None:
    # tool arguments are exact catalog names; the router resolves "YOLOv8 nano" before a call is made
    args = _validate(settings, model=name, precision="int8")
    assert resolve_model(args["model"], settings).model == name


def test_schema_offers_every_buildable_workload(settings: Settings) -> None:
    spec = make_run_benchmark_tool(settings).parameters["properties"]["model"]
    assert spec["examples"] == list(BUILDABLE)
    assert all(name in make_run_benchmark_tool(settings).description for name in BUILDABLE)
    fields = {f.name: f for f in form_fields(make_run_benchmark_tool(settings).parameters)}
    assert fields["model"].kind == "dropdown" and fields["model"].custom  # a path can still be typed
    assert set(fields["model"].choices) == set(BUILDABLE)


@pytest.mark.parametrize("arguments", [
    {"model": "resnet-50", "seconds": 0},
    {"model": "resnet-50", "seconds": -5},
    {"model": "resnet-50", "seconds": 10**6},
    {"model": "resnet-50", "seconds": "10"},
    {"model": "resnet-50", "seconds": 2.5},
    {"model": "resnet-50", "seconds": True},
    {"model": 50},
    {"model": ""},
    {},
    {"model": "resnet-50", "hint": "fast"},
    {"model": "resnet-50", "precision": "int4"},
    {"model": "resnet-50", "device": 0},
    {"model": "resnet-50", "device": "CPU; reboot"},
    {"model": "resnet-50", "nireq": 4},
])
def test_schema_rejects_bad_arguments(settings: Settings, arguments: dict) -> None:
    with pytest.raises(ToolArgumentError):
        make_run_benchmark_tool(settings).validate(arguments, settings)


@pytest.mark.parametrize("model", [
    "model; curl x", "resnet-50 && rm -rf /", "$(reboot)", "`id`", "a|b", "x > /tmp/y", "-m /etc/passwd",
    "resnet-50\nrm", "~/model.xml", "m*.xml",
])
def test_shell_metacharacters_are_rejected(settings: Settings, model: str) -> None:
    with pytest.raises(ToolArgumentError):
        _validate(settings, model=model)


def test_seconds_bounded_by_settings(settings: Settings) -> None:
    small = settings.replace(bench_max_seconds=5)
    assert make_run_benchmark_tool(small).parameters["properties"]["seconds"]["maximum"] == 5
    _validate(small, model="resnet-50", seconds=5)
    with pytest.raises(ToolArgumentError):
        _validate(small, model="resnet-50", seconds=6)
    with pytest.raises(ToolArgumentError):  # the module-level tool (default bounds) still checks the settings
        RUN_BENCHMARK.validate({"model": "resnet-50", "seconds": 6}, small)


def test_device_must_be_available(settings: Settings) -> None:
    assert _validate(settings, model="resnet-50", device="cpu")["device"] == "cpu"
    _validate(settings, model="resnet-50", device="AUTO")
    with pytest.raises(ToolArgumentError) as info:
        _validate(settings, model="resnet-50", device="HETERO:XYZ,CPU")
    assert "CPU" in str(info.value.hint)
    if not any(d.startswith("GPU") for d in available_devices()):
        with pytest.raises(ToolArgumentError):
            _validate(settings, model="resnet-50", device="GPU")


def test_model_path_inside_allowed_dir_is_accepted(settings: Settings) -> None:
    xml = _fake_ir(settings.bench_allowed_dirs[0] / "mine")
    assert _validate(settings, model=str(xml))["model"] == str(xml)
    _validate(settings, model="mine/model.xml")  # relative to an allowed folder
    onnx = settings.bench_allowed_dirs[0] / "net.onnx"
    onnx.write_bytes(b"\0")
    _validate(settings, model=str(onnx))


def test_model_paths_outside_the_allow_list_are_rejected(settings: Settings, tmp_path: Path) -> None:
    outside = _fake_ir(tmp_path / "outside")
    for model in (str(outside), "../../etc/passwd", "/etc/passwd", "../outside/model.xml",
                  str(settings.bench_allowed_dirs[0] / ".." / "outside" / "model.xml")):
        with pytest.raises(ToolArgumentError):
            _validate(settings, model=model)


def test_symlink_escaping_the_allowed_dir_is_rejected(settings: Settings, tmp_path: Path) -> None:
    outside = _fake_ir(tmp_path / "secret")
    allowed = settings.bench_allowed_dirs[0]
    (allowed / "link.xml").symlink_to(outside)
    (allowed / "linkdir").symlink_to(outside.parent, target_is_directory=True)
    for model in (str(allowed / "link.xml"), str(allowed / "linkdir" / "model.xml")):
        with pytest.raises(ToolArgumentError) as info:
            _validate(settings, model=model)
        assert "outside" in info.value.message


def test_missing_wrong_suffix_and_missing_bin_are_rejected(settings: Settings) -> None:
    allowed = settings.bench_allowed_dirs[0]
    (allowed / "notes.txt").write_text("x")
    (allowed / "lonely.xml").write_text("<net/>")
    for model in (str(allowed / "absent.xml"), str(allowed / "notes.txt"), str(allowed / "lonely.xml")):
        with pytest.raises(ToolArgumentError):
            _validate(settings, model=model)


def test_registry_has_the_contract_tools(settings: Settings) -> None:
    registry = default_registry(settings)
    assert registry.names()[0] == "run_benchmark"
    assert "system_info" in registry
    assert registry.get("run_benchmark").exclusive
    if (PROJECT_ROOT / "assistant" / "tools" / "llm_bench.py").exists():
        assert "benchmark_llm" in registry


# -- parsing --------------------------------------------------------------------------------------------

_LOG = """[ INFO ] Build ................................. 2026.4.1-1-abc
[ INFO ]   INFERENCE_PRECISION_HINT: <Type: 'bfloat16'>
[ INFO ] Compile model took 120.50 ms
[ INFO ] First inference took 7.00 ms
[ INFO ] Count:            400 iterations
[ INFO ] Duration:         2001.00 ms
[ INFO ] Latency:
[ INFO ]    Median:        3.10 ms
[ INFO ]    Average:       4.20 ms
[ INFO ]    Min:           2.00 ms
[ INFO ]    Max:           20.50 ms
[ INFO ] Throughput:   199.90 FPS""".splitlines()


def test_parse_prefers_the_json_report() -> None:
    report = {"configuration_setup": {"number of parallel infer requests": "2"},
              "execution_results": {"throughput": "55.5", "latency (ms)": "30.1", "avg latency": "31",
                                    "min latency": "29", "max latency": "40",
                                    "total number of iterations": "111",
                                    "total execution time (ms)": "2000", "compile model time (ms)": "99"}}
    stats = parse_statistics(report, _LOG)
    assert stats["throughput_fps"] == 55.5
    assert stats["latency_ms"] == {"median": 30.1, "avg": 31.0, "min": 29.0, "max": 40.0}
    assert (stats["iterations"], stats["infer_requests"]) == (111, 2)
    assert stats["openvino_version"] == "2026.4.1-1-abc"
    assert stats["inference_precision"] == "bfloat16"


def test_parse_falls_back_to_the_log() -> None:
    stats = parse_statistics(None, _LOG)
    assert stats["throughput_fps"] == 199.9
    assert stats["latency_ms"] == {"median": 3.1, "avg": 4.2, "min": 2.0, "max": 20.5}
    assert stats["iterations"] == 400
    assert stats["compile_ms"] == 120.5


def test_parse_without_statistics_is_an_error() -> None:
    with pytest.raises(ToolExecutionError):
        parse_statistics(None, ["[ ERROR ] something broke"])


# -- exclusivity without running anything ----------------------------------------------------------------

def test_busy_when_another_process_holds_the_benchmark_lock(settings: Settings) -> None:
    lock = settings.cache_dir / "benchmark.lock"
    lock.parent.mkdir(parents=True)
    with open(lock, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        with pytest.raises(ToolBusy):
            run_benchmark({"model": "mobilenet-v2", "seconds": 1}, ToolContext(settings=settings))
    assert not workload_dir(settings.models_dir, "mobilenet-v2", "fp32").exists()  # nothing was built


# -- real benchmark_app runs ------------------------------------------------------------------------------

@pytest.mark.slow
def test_latency_run_reports_real_numbers_and_a_runnable_command(bench_settings: Settings) -> None:
    messages: list[tuple[float, str]] = []
    ctx = ToolContext(settings=bench_settings, progress=lambda f, m: messages.append((f, m)))
    result = run_benchmark({"model": "mobilenet-v2", "seconds": 2}, ctx)

    assert (result["model"], result["device"], result["hint"], result["api"]) == (
        "mobilenet-v2", "CPU", "latency", "sync")
    assert result["precision"] == "fp32" and result["seconds"] == 2
    latency = result["latency_ms"]
    assert 0 < latency["min"] <= latency["median"] <= latency["max"]
    assert latency["min"] <= latency["avg"] <= latency["max"]
    assert result["throughput_fps"] > 0 and result["iterations"] > 0
    # sync API, one request: throughput is roughly iterations / measured time
    expected_fps = result["iterations"] / result["measured_ms"] * 1000
    assert result["throughput_fps"] == pytest.approx(expected_fps, rel=0.05)
    command = result["command"]
    assert Path(command[0]).name == "benchmark_app" and Path(command[0]).parent == Path(sys.executable).parent
    assert command[command.index("-hint") + 1] == "latency" and command[command.index("-api") + 1] == "sync"
    assert command[command.index("-t") + 1] == "2"
    assert command[command.index("-m") + 1] == result["ir_path"]
    assert "synthetic" in result["note"]
    assert Path(result["report_path"]).is_file()
    assert result["duration_s"] >= 2
    assert any("Measuring" in m for _, m in messages)
    assert all(0 <= f <= 1 for f, _ in messages)

    [row] = History(bench_settings.history_db).list()
    assert row["id"] == result["history_id"]
    assert row["result"]["throughput_fps"] == result["throughput_fps"]
    assert row["config"]["model"] == "mobilenet-v2" and row["model"] == "mobilenet-v2"
    assert row["config"]["command"] == command

    Path(result["report_path"]).unlink()
    again = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert again.returncode == 0, again.stdout[-2000:]
    assert Path(result["report_path"]).is_file()


@pytest.mark.slow
def test_throughput_run_of_a_user_model_path(bench_settings: Settings) -> None:
    source = workload_dir(bench_settings.models_dir, "mobilenet-v2", "fp32")
    mine = bench_settings.bench_allowed_dirs[0] / "mine"
    shutil.copytree(source, mine)
    result = run_benchmark({"model": str(mine / "model.xml"), "hint": "throughput", "seconds": 2},
                           ToolContext(settings=bench_settings))
    assert result["api"] == "async" and result["hint"] == "throughput"
    assert result["ir_path"] == str((mine / "model.xml").resolve())
    assert result["precision"] == "as exported"
    assert "synthetic" not in result["note"]
    assert result["infer_requests"] >= 1
    assert result["throughput_fps"] > 0


@pytest.mark.slow
def test_catalog_miss_builds_in_a_child_process(settings: Settings) -> None:
    messages: list[str] = []
    ctx = ToolContext(settings=settings, progress=lambda f, m: messages.append(m))
    result = run_benchmark({"model": "mobilenet-v2", "precision": "int8", "seconds": 1}, ctx)
    assert Path(result["ir_path"]) == workload_dir(settings.models_dir, "mobilenet-v2", "int8") / "model.xml"
    assert any("quantizing" in m for m in messages)
    assert result["precision"] == "int8" and result["throughput_fps"] > 0


def test_broken_model_file_is_an_execution_error(settings: Settings) -> None:
    xml = _fake_ir(settings.bench_allowed_dirs[0], "broken")
    with pytest.raises(ToolExecutionError) as info:
        run_benchmark({"model": str(xml), "seconds": 1}, ToolContext(settings=settings))
    assert "exit code" in info.value.message


def _benchmark_processes(marker: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if any(str(marker) in part for part in proc.info["cmdline"] or []):
            found.append(proc)
    return found


@pytest.mark.slow
def test_time_limit_kills_benchmark_app(bench_settings: Settings) -> None:
    tight = bench_settings.replace(tool_timeout_s=3)
    started = time.monotonic()
    with pytest.raises(ToolExecutionError) as info:
        run_benchmark({"model": "mobilenet-v2", "seconds": 30}, ToolContext(settings=tight))
    assert "timed out after" in info.value.message
    assert time.monotonic() - started < 15
    assert _benchmark_processes(tight.cache_dir) == []
    assert History(tight.history_db).list() == []  # a killed run is not stored as a result


@pytest.mark.slow
def test_cancel_stops_the_run(bench_settings: Settings) -> None:
    cancel = threading.Event()

    def progress(fraction: float, message: str) -> None:
        if "Measuring" in message:
            cancel.set()

    started = time.monotonic()
    with pytest.raises(ToolExecutionError) as info:
        run_benchmark({"model": "mobilenet-v2", "seconds": 30},
                      ToolContext(settings=bench_settings, progress=progress, cancel=cancel))
    assert "cancelled" in info.value.message
    assert time.monotonic() - started < 20
    assert _benchmark_processes(bench_settings.cache_dir) == []


@pytest.mark.slow
def test_a_failing_progress_callback_still_stops_benchmark_app(bench_settings: Settings) -> None:
    def progress(fraction: float, message: str) -> None:
        if "Measuring" in message:
            raise RuntimeError("the UI went away")

    with pytest.raises(RuntimeError):
        run_benchmark({"model": "mobilenet-v2", "seconds": 30},
                      ToolContext(settings=bench_settings, progress=progress))
    assert _benchmark_processes(bench_settings.cache_dir) == []
    # and the lock was released
    assert run_benchmark({"model": "mobilenet-v2", "seconds": 1},
                         ToolContext(settings=bench_settings))["throughput_fps"] > 0


@pytest.mark.slow
def test_second_concurrent_benchmark_is_busy(bench_settings: Settings) -> None:
    running = threading.Event()
    outcome: dict = {}

    def first() -> None:
        ctx = ToolContext(settings=bench_settings, progress=lambda f, m: running.set())
        try:
            outcome["result"] = run_benchmark({"model": "mobilenet-v2", "seconds": 3}, ctx)
        except Exception as exc:  # reported by the assertion below
            outcome["error"] = exc

    thread = threading.Thread(target=first)
    thread.start()
    assert running.wait(60)
    with pytest.raises(ToolBusy) as info:
        run_benchmark({"model": "resnet-50", "seconds": 1}, ToolContext(settings=bench_settings))
    assert "another benchmark" in info.value.message and info.value.hint
    thread.join(120)
    assert "error" not in outcome, outcome.get("error")
    assert outcome["result"]["throughput_fps"] > 0
    # the lock is released afterwards
    result = run_benchmark({"model": "mobilenet-v2", "seconds": 1}, ToolContext(settings=bench_settings))
    assert result["throughput_fps"] > 0

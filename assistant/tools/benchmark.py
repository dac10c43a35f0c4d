"""The run_benchmark tool: the real `benchmark_app`, run the way the FAQ describes.

Latency is measured in synchronous mode (``-hint latency -api sync``), throughput
with the asynchronous API (``-hint throughput -api async``). Catalog workloads are
built offline (see `workloads`) in a child process; user models must be .xml/.onnx
files inside the allowed folders. One benchmark runs at a time; every run is
stored in the history database with its exact command.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from assistant.config import PROJECT_ROOT, Settings
from assistant.errors import ToolArgumentError, ToolExecutionError
from assistant.history import record_run
from assistant.tools.base import Tool, ToolContext
from assistant.tools.slot import exclusive, held_fds
from assistant.tools.workloads import BUILDABLE, PRECISIONS, SYNTHETIC_NOTE, cached_ir, unbuildable_reason

HINTS = {"latency": "sync", "throughput": "async"}
"""Performance hint -> API, as in the FAQ (latency is measured synchronously)."""
MODEL_PATTERN = r"^[A-Za-z0-9_./][A-Za-z0-9 _./+:,=@-]*$"
"""Catalog names and plain paths; no shell metacharacters, no leading '-'."""
DEVICE_PATTERN = r"^[A-Za-z][A-Za-z0-9_.:,]*$"
MODEL_SUFFIXES = (".xml", ".onnx")
COMPILE_MARGIN_S = 90
"""Time allowed on top of `seconds` for reading, compiling and the first inference."""
USER_MODEL_PRECISION = "as exported"
"""The `precision` reported for a user's model file (the argument applies to catalog workloads)."""
MULTI_DEVICE_PREFIXES = ("AUTO:", "HETERO:", "MULTI:")



@dataclass(frozen=True)
class Target:
    """A resolved `model` argument: a catalog workload to build, or a user's model file."""

    model: str  # canonical catalog name, or the resolved path as text
    path: Path | None = None  # the user's file; None for catalog workloads

    @property
    def is_catalog(self) -> bool:
        """True for a catalog workload built offline with synthetic weights."""
        return self.path is None


def make_run_benchmark_tool(settings: Settings | None = None) -> Tool:
    """The run_benchmark tool declaration, with `seconds` bounded by the settings."""
    max_seconds = (settings or Settings()).bench_max_seconds
    return Tool(
        name="run_benchmark",
        description=(
            f"Run OpenVINO benchmark_app on this machine for a catalog workload ({', '.join(BUILDABLE)}; "
            "built offline from the exact architecture with random weights) or a local .xml/.onnx model in an "
            "allowed folder. Returns throughput (FPS), latency (median/avg/min/max ms) and the exact command. "
            "Latency uses the sync API, throughput the async API, as in the OpenVINO benchmark FAQ."
        ),
        parameters={
            "type": "object",
            "properties": {
                "model": {"type": "string", "minLength": 1, "maxLength": 512, "pattern": MODEL_PATTERN,
                          "examples": list(BUILDABLE),  # the runnable catalog workloads (a path is allowed too)
                          "description": "catalog workload name, or an .xml/.onnx path in an allowed folder"},
                "device": {"type": "string", "default": "CPU", "maxLength": 64, "pattern": DEVICE_PATTERN,
                           "description": "OpenVINO device: CPU, GPU, NPU, AUTO ..."},
                "hint": {"type": "string", "enum": list(HINTS), "default": "latency"},
                "precision": {"type": "string", "enum": list(PRECISIONS), "default": "fp32",
                              "description": "precision of the catalog workload's IR (int8: NNCF PTQ)"},
                "seconds": {"type": "integer", "minimum": 1, "maximum": max_seconds, "default": 10,
                            "description": "measurement time in seconds"},
            },
            "required": ["model"],
            "additionalProperties": False,
        },
        function=run_benchmark,
        exclusive=True,
        check=check_arguments,
    )


def check_arguments(args: dict[str, Any], settings: Settings) -> None:
    """Allow-list checks after the schema: model an exact catalog name or an allowed file (a catalog name
    is stored as the catalog spells it), device present, seconds in range."""
    seconds = args.get("seconds", 10)
    if not 1 <= seconds <= settings.bench_max_seconds:
        raise ToolArgumentError(
            f"run_benchmark: seconds must be between 1 and {settings.bench_max_seconds}, not {seconds}",
            hint="Short runs (5-20 s) are usually enough; the limit is the bench_max_seconds setting.",
        )
    target = resolve_model(args["model"], settings)
    if target.is_catalog:
        args["model"] = target.model
    check_device(args.get("device", "CPU"))


def resolve_model(model: str, settings: Settings) -> Target:
    """Turn the `model` argument into a buildable catalog workload or an allowed model file.

    A catalog workload is named exactly (case aside): the tool takes names, not descriptions; finding the
    model a sentence means is the router's job."""
    if _looks_like_path(model):
        path = resolve_model_path(model, settings)
        return Target(model=str(path), path=path)
    catalog = _catalog(settings)
    entry = next((e for e in catalog if e.model.lower() == model.lower()), None)
    if entry is None:
        close = [e.model for e in catalog.candidates(model)]
        guess = f"Did you mean: {', '.join(close)}? " if close else ""
        raise ToolArgumentError(f"run_benchmark: unknown model {model!r}",
                                hint=guess + _valid_models_hint(catalog, settings))
    if entry.model not in BUILDABLE:
        raise ToolArgumentError(
            f"run_benchmark: {entry.model} cannot be benchmarked offline with benchmark_app",
            hint=unbuildable_reason(entry.model, getattr(entry, "task", "")),
        )
    return Target(model=entry.model)


def resolve_model_path(model: str, settings: Settings) -> Path:
    """The real path of a user model, or ToolArgumentError when it is not an allowed .xml/.onnx file."""
    raw = Path(model)
    allowed = allowed_dirs(settings)
    where = ", ".join(shown_dir(d) for d in allowed)
    if ".." in raw.parts:
        raise ToolArgumentError(f"run_benchmark: '..' is not allowed in model paths ({model})",
                                hint=f"Give the path inside one of: {where}")
    candidates = [raw] if raw.is_absolute() else [*(d / raw for d in allowed), Path.cwd() / raw]
    inside = [real for real in (c.resolve() for c in candidates) if _is_inside(real, allowed)]
    if not inside:
        raise ToolArgumentError(
            f"run_benchmark: {model} is outside the folders benchmarks may read (symlinks are resolved)",
            hint=f"Copy the model into one of: {where} (setting bench_allowed_dirs, OVPERF_BENCH_DIRS).",
        )
    real = next((p for p in inside if p.is_file()), inside[0])
    if real.suffix.lower() not in MODEL_SUFFIXES:
        raise ToolArgumentError(f"run_benchmark: {model} is not an .xml (OpenVINO IR) or .onnx model file",
                                hint="Pass the .xml of an IR (its .bin next to it) or an .onnx file.")
    if not real.is_file():
        raise ToolArgumentError(f"run_benchmark: no model file at {model}",
                                hint=f"Put the model into one of: {where}, then pass its path.")
    if real.suffix.lower() == ".xml" and not real.with_suffix(".bin").is_file():
        raise ToolArgumentError(f"run_benchmark: {real.name} has no {real.stem}.bin next to it",
                                hint="Copy the IR's .bin file next to its .xml.")
    return real


def shown_dir(folder: Path) -> str:
    """A folder as hints show it: relative to the project when inside it, else by its last two parts
    (error hints travel to API clients, who need no absolute server paths)."""
    if folder.is_relative_to(PROJECT_ROOT):
        return str(folder.relative_to(PROJECT_ROOT)) or "."
    return str(Path("…", *folder.parts[-2:])) if len(folder.parts) > 2 else str(folder)


def allowed_dirs(settings: Settings) -> list[Path]:
    """Folders that benchmarks may read models from (resolved)."""
    return [Path(d).resolve() for d in (*settings.bench_allowed_dirs, settings.models_dir)]


def check_device(device: str) -> str:
    """The device name in upper case, or ToolArgumentError naming the available devices."""
    name = device.strip().upper()
    available = available_devices()
    prefix = next((p for p in MULTI_DEVICE_PREFIXES if name.startswith(p)), None)
    members = name[len(prefix):].split(",") if prefix else [name]
    if prefix and (not all(members) or len(set(members)) != len(members)
                   or any(m.startswith(MULTI_DEVICE_PREFIXES) or m == "AUTO" for m in members)):
        raise ToolArgumentError(
            f"run_benchmark: device {device!r} is not a valid device list",
            hint=f"Name each device once after {prefix}, comma-separated, e.g. {prefix}CPU or {prefix}GPU,CPU.")
    if name == "AUTO" or all(_device_present(m, available) for m in members):
        return name
    raise ToolArgumentError(
        f"run_benchmark: device {device!r} is not available on this machine",
        hint=f"Available devices: {', '.join([*available, 'AUTO'])}.",
    )


@functools.cache
def available_devices() -> tuple[str, ...]:
    """OpenVINO devices on this machine (queried once per process)."""
    import openvino as ov

    return tuple(ov.Core().available_devices)


def run_benchmark(args: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    """Validate, build the workload if needed, run benchmark_app, parse, store in history."""
    settings = ctx.settings
    args = make_run_benchmark_tool(settings).validate(args, settings)
    target = resolve_model(args["model"], settings)
    device = check_device(args["device"])
    with exclusive(settings):
        started_at = datetime.now(UTC).isoformat(timespec="seconds")
        t0 = time.monotonic()
        deadline = t0 + settings.tool_timeout_s
        ir_path = target.path or _prepare_workload(target.model, args["precision"], ctx, deadline)
        report_dir = _report_dir(settings, target, args)
        command = build_command(ir_path, device, args["hint"], args["seconds"], report_dir)
        margin = COMPILE_MARGIN_S + (BUILDABLE[target.model].slow_margin_s if target.is_catalog else 0)
        limit = max(1, min(args["seconds"] + margin, int(deadline - time.monotonic())))
        lines = run_streaming(command, ctx=ctx, time_limit=limit, label="benchmark_app",
                              progress=_bench_progress(ctx, args["seconds"]))
        stats = parse_statistics(_read_json(report_dir / "benchmark_report.json"), lines)
        result = _result(target, args, device, command, ir_path, stats, started_at, time.monotonic() - t0)
        result["report_path"] = str(report_dir / "benchmark_report.json")
    record_run(settings.history_db, "run_benchmark",
               {**args, "device": device, "ir_path": result["ir_path"], "command": result["command"]}, result)
    return result


def benchmark_app_path() -> Path:
    """The benchmark_app console script of this Python environment."""
    bin_dir = Path(sys.executable).parent  # not resolved: a venv's python is a symlink
    for name in ("benchmark_app", "benchmark_app.exe"):
        if (bin_dir / name).is_file():
            return bin_dir / name
    if found := shutil.which("benchmark_app"):
        return Path(found)
    raise ToolExecutionError(
        "run_benchmark: benchmark_app was not found",
        hint="It ships with the openvino package: python -m pip install openvino (in this environment)",
    )


def build_command(ir_path: Path, device: str, hint: str, seconds: int, report_dir: Path) -> list[str]:
    """The benchmark_app argument list (runnable as is, no shell)."""
    return [str(benchmark_app_path()), "-m", str(ir_path), "-d", device, "-hint", hint, "-api", HINTS[hint],
            "-t", str(seconds), "-report_type", "no_counters", "-json_stats",
            "-report_folder", str(report_dir)]


def run_streaming(command: list[str], *, ctx: ToolContext, time_limit: float, label: str,
                  progress: Callable[[str], None], cwd: Path | None = None) -> list[str]:
    """Run a command in its own process group, stream its output lines; kill it on cancel or time limit.

    The child dies with this process (PR_SET_PDEATHSIG, even on kill -9) and inherits the benchmark slot's
    lock file, so nothing of a run measures on unnoticed beside a later one."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    try:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                errors="replace", start_new_session=True, env=env, cwd=cwd,
                                pass_fds=held_fds(), preexec_fn=_die_with(os.getpid()))
    except OSError as exc:
        raise ToolExecutionError(f"{label} could not be started: {exc}") from exc
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_pump, args=(proc, lines), daemon=True).start()
    try:
        output = _follow(lines, ctx=ctx, time_limit=time_limit, label=label, progress=progress)
        code = proc.wait(timeout=30)  # output closed: the process is exiting
    except BaseException:  # cancel, time limit, a failing progress callback, KeyboardInterrupt
        _kill(proc)
        raise
    if code != 0:
        errors = [ln for ln in output if "ERROR" in ln or "Error" in ln] or output[-5:]
        raise ToolExecutionError(f"{label} failed with exit code {code}", hint="\n".join(errors[-5:]))
    return output


def _follow(lines: queue.Queue[str | None], *, ctx: ToolContext, time_limit: float, label: str,
            progress: Callable[[str], None]) -> list[str]:
    """Collect output lines until EOF; raise on cancel or when the time limit passes."""
    output: list[str] = []
    deadline = time.monotonic() + time_limit
    while True:
        if ctx.cancel.is_set():
            raise ToolExecutionError(f"{label} was cancelled", hint="Run it again when you need the numbers.")
        if time.monotonic() > deadline:
            raise ToolExecutionError(
                f"{label} timed out after {time_limit:.0f} s and was stopped",
                hint="Use fewer seconds, a smaller model, or raise the tool_timeout_s setting.")
        try:
            line = lines.get(timeout=0.2)
        except queue.Empty:
            progress("")
            continue
        if line is None:
            return output
        output.append(line.rstrip("\n"))
        progress(output[-1])


PR_SET_PDEATHSIG = 1
"""prctl(2) option: the signal the calling process gets when its parent thread exits."""


def _die_with(parent: int) -> Callable[[], None] | None:
    """A preexec_fn for Popen: the child gets SIGKILL when `parent` dies (Linux; elsewhere None)."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    prctl = ctypes.CDLL(None, use_errno=True).prctl

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(137)

    return preexec


def _pump(proc: subprocess.Popen[str], lines: queue.Queue[str | None]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.put(line)
    lines.put(None)


def _kill(proc: subprocess.Popen[str]) -> None:
    """Kill the whole process group (benchmark_app and anything it started)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if hasattr(os, "killpg"):
            os.killpg(proc.pid, signal.SIGKILL)
        else:  # pragma: no cover - not POSIX
            proc.kill()
    proc.wait()


def parse_statistics(report: dict[str, Any] | None, lines: list[str]) -> dict[str, Any]:
    """Throughput, latency and run facts from benchmark_report.json, else from the printed log."""
    stats = _from_report(report) if report else {}
    if stats.get("throughput_fps") is None:
        stats = {**_from_log(lines), **{k: v for k, v in stats.items() if v is not None}}
    if stats.get("throughput_fps") is None or stats.get("latency_ms", {}).get("median") is None:
        raise ToolExecutionError("run_benchmark: benchmark_app finished without reporting statistics",
                                 hint="\n".join(lines[-5:]))
    stats["openvino_version"] = _search(r"Build \.+ (\S+)", lines) or _openvino_version()
    stats["inference_precision"] = _search(r"INFERENCE_PRECISION_HINT: <Type: '(\w+)'>", lines)
    return stats


def _from_report(report: dict[str, Any]) -> dict[str, Any]:
    results = report.get("execution_results", {})
    setup = report.get("configuration_setup", {})
    return {
        "throughput_fps": _number(results.get("throughput")),
        "latency_ms": {"median": _number(results.get("latency (ms)")),
                       "avg": _number(results.get("avg latency")),
                       "min": _number(results.get("min latency")),
                       "max": _number(results.get("max latency"))},
        "iterations": _integer(results.get("total number of iterations")),
        "measured_ms": _number(results.get("total execution time (ms)")),
        "compile_ms": _number(results.get("compile model time (ms)")),
        "first_inference_ms": _number(results.get("first inference time (ms)")),
        "infer_requests": _integer(setup.get("number of parallel infer requests")),
    }


def _from_log(lines: list[str]) -> dict[str, Any]:
    def ms(label: str) -> float | None:
        return _number(_search(rf"^\[ INFO \]\s+{label}:\s+([\d.]+) ms", lines))

    return {
        "throughput_fps": _number(_search(r"Throughput:\s+([\d.]+) FPS", lines)),
        "latency_ms": {"median": ms("Median"), "avg": ms("Average"), "min": ms("Min"), "max": ms("Max")},
        "iterations": _integer(_search(r"Count:\s+(\d+) iterations", lines)),
        "measured_ms": _number(_search(r"Duration:\s+([\d.]+) ms", lines)),
        "compile_ms": _number(_search(r"Compile model took ([\d.]+) ms", lines)),
        "first_inference_ms": _number(_search(r"First inference took ([\d.]+) ms", lines)),
        "infer_requests": None,
    }


def _search(pattern: str, lines: list[str]) -> str | None:
    regex = re.compile(pattern)
    for line in lines:
        if match := regex.search(line):
            return match.group(1)
    return None


def _number(value: Any) -> float | None:
    try:
        return round(float(value), 3)
    except (TypeError, ValueError):
        return None


def _integer(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _openvino_version() -> str:
    import openvino as ov

    return ov.get_version()


def _catalog(settings: Settings) -> Any:
    from assistant.catalog import default_catalog

    return default_catalog(settings.knowledge_dirs)


def _looks_like_path(model: str) -> bool:
    return "/" in model or model.lower().endswith(MODEL_SUFFIXES)


def _is_inside(path: Path, dirs: list[Path]) -> bool:
    return any(path == d or path.is_relative_to(d) for d in dirs)


def _device_present(name: str, available: tuple[str, ...]) -> bool:
    return name in available or any(a.split(".")[0] == name for a in available)


def _valid_models_hint(catalog: Any, settings: Settings) -> str:
    from assistant.tools.diffusion_workloads import is_diffusion_workload
    from assistant.tools.llm_workloads import is_llm_workload

    llms = [n for n in catalog.names() if n not in BUILDABLE and is_llm_workload(n)]
    diffusion = [n for n in catalog.names() if is_diffusion_workload(n)]
    others = [n for n in catalog.names() if n not in BUILDABLE and n not in llms and n not in diffusion]
    text = f"Benchmarkable catalog workloads: {', '.join(BUILDABLE)}."
    if llms:
        text += f" Catalog LLMs are measured with benchmark_llm (ovperf bench-llm --model NAME): {', '.join(llms)}."
    if diffusion:
        text += (" Diffusion pipelines are measured with benchmark_diffusion (ovperf bench-diffusion --model NAME): "
                 f"{', '.join(diffusion)}.")
    if others:
        text += f" Not buildable offline yet: {', '.join(others)}."
    dirs = ", ".join(shown_dir(d) for d in allowed_dirs(settings))
    return text + f" Or pass the path of your own .xml/.onnx inside: {dirs}."


def _prepare_workload(name: str, precision: str, ctx: ToolContext, deadline: float) -> Path:
    """The cached IR of a catalog workload, built in a child process on a cache miss."""
    models_dir = ctx.settings.models_dir
    if (hit := cached_ir(models_dir, name, precision)) is not None:
        return hit
    ctx.progress(0.0, f"building {name} {precision} (first use; cached afterwards)")
    command = [sys.executable, "-m", "assistant.tools.workloads", name, precision,
               "--models-dir", str(Path(models_dir).resolve())]
    limit = max(1, int(deadline - time.monotonic()))

    def progress(line: str) -> None:
        if line and "warn" not in line.lower():
            ctx.progress(0.1, line)

    run_streaming(command, ctx=ctx, time_limit=limit, label=f"building {name} {precision}", progress=progress,
                  cwd=PROJECT_ROOT)
    if (hit := cached_ir(models_dir, name, precision)) is None:
        raise ToolExecutionError(f"run_benchmark: building {name} {precision} produced no IR")
    return hit


def _bench_progress(ctx: ToolContext, seconds: int) -> Callable[[str], None]:
    """Map benchmark_app's '[Step n/11]' lines and the measuring time to progress fractions."""
    state = {"fraction": 0.3, "measuring_since": None, "last": 0.0}

    def progress(line: str) -> None:
        now = time.monotonic()
        if match := re.match(r"\[Step (\d+)/(\d+)\] (.*)", line):
            step, total = int(match.group(1)), int(match.group(2))
            state["fraction"] = 0.3 + 0.6 * (step - 1) / total
            state["measuring_since"] = now if step == 10 else None
            ctx.progress(state["fraction"], match.group(3))
        elif state["measuring_since"] is not None and now - state["last"] >= 1.0:
            elapsed = now - state["measuring_since"]
            state["last"] = now
            ctx.progress(min(0.95, state["fraction"] + 0.05 * elapsed / seconds),
                         f"measuring: {min(elapsed, seconds):.0f}/{seconds} s")

    return progress


def _report_dir(settings: Settings, target: Target, args: dict[str, Any]) -> Path:
    """A fresh folder for this run's benchmark_report.json (kept, so the command stays runnable)."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(target.model).stem if target.path else target.model)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    folder = Path(settings.cache_dir).resolve() / "benchmark_reports" / f"{stamp}-{stem}-{args['hint']}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _result(target: Target, args: dict[str, Any], device: str, command: list[str], ir_path: Path,
            stats: dict[str, Any], started_at: str, duration_s: float) -> dict[str, Any]:
    precision = args["precision"] if target.is_catalog else USER_MODEL_PRECISION
    return {
        "model": target.model, "device": device, "hint": args["hint"], "precision": precision,
        "api": HINTS[args["hint"]], "seconds": args["seconds"],
        "throughput_fps": stats["throughput_fps"], "latency_ms": stats["latency_ms"],
        "iterations": stats["iterations"], "command": command, "openvino_version": stats["openvino_version"],
        "ir_path": str(ir_path), "note": _note(target, precision, stats.get("inference_precision")),
        "started_at": started_at, "duration_s": round(duration_s, 2),
        **{k: stats.get(k) for k in ("inference_precision", "infer_requests", "compile_ms",
                                     "first_inference_ms", "measured_ms")},
    }


def _note(target: Target, precision: str | None, inference_precision: str | None) -> str:
    """What the numbers are not (the executed precision is stated once, from `inference_precision`)."""
    return SYNTHETIC_NOTE if target.is_catalog else (
        "your model as exported; the precision argument applies to catalog workloads only")


RUN_BENCHMARK = make_run_benchmark_tool()
"""run_benchmark with the default settings' bounds; prefer make_run_benchmark_tool(settings)."""

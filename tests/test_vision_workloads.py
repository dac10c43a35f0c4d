"""The catalog's detection and segmentation networks: their graphs at tiny sizes, their published sizes,
and one real benchmark_app run."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import openvino as ov
import pytest

from assistant.config import Settings
from assistant.history import History
from assistant.tools import vision_nets, workloads
from assistant.tools.base import ToolContext
from assistant.tools.benchmark import run_benchmark
from assistant.tools.workloads import BUILDABLE, SYNTHETIC_NOTE, cached_ir

VISION = ("yolov8n", "ssd-resnet34-1200-onnx", "mask_rcnn_resnet50_atrous_coco")


def _ops(model) -> Counter:
    return Counter(op.get_type_name() for op in model.get_ops())


def _shapes(ports) -> dict[str, str]:
    return {port.get_any_name(): str(port.get_partial_shape()) for port in ports}


def _params(module) -> int:
    return sum(p.numel() for p in module.parameters())


def _run(model, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    compiled = ov.Core().compile_model(model, "CPU")
    return {port.get_any_name(): value for port, value in compiled(inputs).items()}


def test_the_three_networks_are_buildable_catalog_workloads(catalog) -> None:
    for name in VISION:
        entry = catalog.find(name)
        assert entry is not None and entry.model == name and name in BUILDABLE
    sizes = {name: catalog.find(name).input_size for name in VISION}
    assert sizes == {"yolov8n": "608x608", "ssd-resnet34-1200-onnx": "1200x1200",
                     "mask_rcnn_resnet50_atrous_coco": "800x1365"}
    assert "random" in SYNTHETIC_NOTE and "architecture" in SYNTHETIC_NOTE


# -- YOLOv8n ------------------------------------------------------------------------------------------

def test_yolov8n_matches_the_published_nano_model() -> None:
    assert _params(vision_nets.YOLOv8()) == 3_157_200  # Ultralytics: "YOLOv8n summary: ... 3157200 parameters"


def test_yolov8n_graph_at_a_tiny_input() -> None:
    model = vision_nets.yolov8(size=64)
    assert _shapes(model.inputs) == {"images": "[1,3,64,64]"}
    anchors = 8 * 8 + 4 * 4 + 2 * 2  # strides 8, 16, 32
    assert _shapes(model.outputs) == {"output0": f"[1,84,{anchors}]"}
    ops = _ops(model)
    # same layer counts as Ultralytics' own OpenVINO export of yolov8n.yaml
    assert (ops["Convolution"], ops["Swish"], ops["MaxPool"], ops["Interpolate"]) == (64, 57, 3, 2)
    assert ops["Softmax"] == 1 and ops["Sigmoid"] == 1  # DFL and class scores are in the graph, NMS is not
    out = _run(model, {"images": np.random.default_rng(0).random((1, 3, 64, 64), dtype=np.float32)})["output0"]
    assert np.isfinite(out).all()
    assert out[0, 4:].min() >= 0 and out[0, 4:].max() <= 1  # sigmoid class scores
    assert (out[0, 2:4] >= 0).all()  # decoded widths and heights (DFL expectations, never negative)


# -- SSD-ResNet34 --------------------------------------------------------------------------------------

def test_ssd_resnet34_at_1200_has_the_mlperf_grids_and_size() -> None:
    module = vision_nets.SSDResNet34(1200)
    assert module.feature_sizes(1200) == vision_nets.SSD_FEATURES_1200
    assert module.dboxes.shape == (1, 15130, 4)  # MLPerf's 15130 default boxes
    assert _params(module) == pytest.approx(20.058e6, rel=0.01)  # OMZ: 20.058 MParams
    boxes = vision_nets.ssd_default_boxes(1200, vision_nets.SSD_FEATURES_1200)
    assert boxes.min() >= 0 and boxes.max() <= 1


def test_ssd_resnet34_graph_with_fewer_layers() -> None:
    model = vision_nets.ssd_resnet34(size=400, layers=(1, 1, 1))
    assert _shapes(model.inputs) == {"image": "[1,3,400,400]"}
    assert _shapes(model.outputs) == {"bboxes": "[1,..200,4]", "labels": "[1,..200]", "scores": "[1,..200]"}
    ops = _ops(model)
    # conv1 + 3 basic blocks x 2 + 2 projections, 5 extra blocks x 2, 6 location and 6 class heads
    assert ops["Convolution"] == 1 + 3 * 2 + 2 + 10 + 12
    assert ops["MulticlassNms"] == 1 and ops["Softmax"] == 1 and ops["Exp"] == 1
    out = _run(model, {"image": np.random.default_rng(0).random((1, 3, 400, 400), dtype=np.float32) * 255})
    assert out["bboxes"].shape[1] == out["labels"].shape[1] == out["scores"].shape[1] <= 200
    assert np.isfinite(out["bboxes"]).all()
    assert ((out["labels"] >= 1) & (out["labels"] <= 80)).all()  # background excluded
    assert (out["scores"] > 0.05).all()


# -- Mask R-CNN ResNet-50 atrous -------------------------------------------------------------------------

def test_mask_rcnn_published_size() -> None:
    features = vision_nets.BoxClassifierFeatures()
    networks = (vision_nets.MaskRCNNFirstStage(), vision_nets.MaskRCNNBoxHead(features, 90),
                vision_nets.MaskRCNNMaskHead(features, 90))
    # block4 runs in the second and the third stage (both heads hold it); OMZ's IR has its weights twice
    total = sum(_params(n) for n in networks)
    assert total == pytest.approx(50.222e6, rel=0.01)
    mask_convs = [m for m in networks[2].convs if hasattr(m, "weight")]
    assert [c.out_channels for c in mask_convs] == [256, 256, 256] and networks[2].masks.out_channels == 90


def test_mask_rcnn_graph_with_fewer_layers_and_proposals() -> None:
    spec = vision_nets.MaskRCNNSpec(height=128, width=224, units=(1, 1, 1, 1), proposals=16, detections=8)
    model = vision_nets.mask_rcnn(spec)
    assert _shapes(model.inputs) == {"image_tensor": "[1,3,128,224]", "image_info": "[1,3]"}
    assert _shapes(model.outputs) == {"reshape_do_2d": "[8,7]", "masks": "[8,90,33,33]"}
    assert model.input("image_info").get_node().get_layout() == ov.Layout("NC")  # benchmark_app fills H, W, 1
    ops = _ops(model)
    assert (ops["Proposal"], ops["ROIPooling"], ops["DetectionOutput"], ops["Sigmoid"]) == (1, 2, 1, 1)
    # stage 1: conv1 + 3 bottlenecks x 3 + 3 projections + RPN 3; block4 (3 + 1) twice; 4 mask convs
    assert ops["Convolution"] == 1 + 9 + 3 + 3 + 2 * 4 + 4
    assert ops["MatMul"] == 2  # class and box layers
    proposal = next(op for op in model.get_ops() if op.get_type_name() == "Proposal")
    assert proposal.get_output_partial_shape(0).to_shape() == ov.Shape([16, 5])
    out = _run(model, {"image_tensor": np.random.default_rng(0).random((1, 3, 128, 224), dtype=np.float32) * 255,
                       "image_info": np.array([[128, 224, 1]], dtype=np.float32)})
    assert np.isfinite(out["reshape_do_2d"]).all() and np.isfinite(out["masks"]).all()
    assert out["masks"].min() >= 0 and out["masks"].max() <= 1


def test_mask_rcnn_calibration_data_carries_the_image_size(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = vision_nets.MaskRCNNSpec(height=64, width=96, units=(1, 1, 1, 1), proposals=4, detections=2)
    model = vision_nets.mask_rcnn(spec)
    [sample, *_] = workloads._calibration_data("mask_rcnn_resnet50_atrous_coco", model)
    assert sample["image_tensor"].shape == (1, 3, 64, 96) and sample["image_tensor"].max() > 1
    assert sample["image_info"].tolist() == [[64.0, 96.0, 1.0]]


def test_int8_quantization_of_a_tiny_yolov8(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(BUILDABLE, "yolov8n", BUILDABLE["yolov8n"].__class__(
        "yolov8n", "object detection", "tiny", "_yolov8n", calibration_samples=2))
    quantized = workloads._quantize("yolov8n", vision_nets.yolov8(size=64))
    fq_consumers = {target.get_node().get_friendly_name() for op in quantized.get_ops()
                    if op.get_type_name() == "FakeQuantize" for target in op.output(0).get_target_inputs()}
    assert fq_consumers and not any("dfl" in name for name in fq_consumers)  # decoding kept in float


# -- a real run ------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_yolov8n_builds_and_runs_through_benchmark_app(tmp_path: Path) -> None:
    settings = Settings(models_dir=tmp_path / "models", cache_dir=tmp_path / "cache",
                        history_db=tmp_path / "cache" / "history.sqlite", bench_allowed_dirs=(tmp_path,),
                        bench_max_seconds=30, tool_timeout_s=600)
    messages: list[str] = []
    result = run_benchmark({"model": "yolov8n", "seconds": 2},
                           ToolContext(settings=settings, progress=lambda f, m: messages.append(m)))
    assert result["model"] == "yolov8n" and result["precision"] == "fp32"
    assert result["throughput_fps"] > 0 and result["latency_ms"]["median"] > 0 and result["iterations"] >= 1
    assert SYNTHETIC_NOTE in result["note"]
    assert any("building yolov8n" in m for m in messages)
    xml = cached_ir(settings.models_dir, "yolov8n", "fp32")
    assert xml is not None and result["ir_path"] == str(xml)
    model = ov.Core().read_model(xml)
    assert _shapes(model.inputs) == {"images": "[1,3,608,608]"}
    assert _shapes(model.outputs) == {"output0": "[1,84,7581]"}
    [row] = History(settings.history_db).list()
    assert row["model"] == "yolov8n" and row["precision"] == "fp32"

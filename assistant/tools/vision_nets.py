"""The catalog's detection and segmentation networks, defined here from their published definitions.

Each builder returns an OpenVINO model with random weights whose graph matches what the published
benchmarks run, so that benchmark_app's timings hold (they do not depend on weight values):

- ``yolov8n``: Ultralytics YOLOv8 (``cfg/models/v8/yolov8.yaml``, scale n: depth 0.33, width 0.25,
  max channels 1024, 80 classes) as Ultralytics exports it to OpenVINO: backbone, PAN neck and the
  decoupled Detect head with DFL box decoding and sigmoid class scores in the graph, one output
  ``[1, 84, anchors]`` (7581 anchors at 608x608); NMS stays outside the graph, as in that export.
- ``ssd-resnet34-1200-onnx``: the MLPerf inference SSD-ResNet34 (``vision/classification_and_detection/
  python/models/ssd_r34.py``): ResNet-34 up to conv4_x with conv4_x's stride set to 1, five extra
  blocks, heads of stride 3 (4/6/6/6/4/4 default boxes on 50/25/13/7/3/3 grids, 15130 boxes, 81
  classes), box decoding and softmax, and the per-class NMS of that ONNX model (score > 0.05, top 200
  per class, IoU 0.5, best 200 kept) as one OpenVINO MulticlassNms. Outputs ``bboxes`` [1, N, 4],
  ``labels`` [1, N], ``scores`` [1, N], N <= 200.
- ``mask_rcnn_resnet50_atrous_coco``: the TensorFlow Object Detection API Mask R-CNN
  (``samples/configs/mask_rcnn_resnet50_atrous_coco.config``: ResNet-50 v1 with first-stage output
  stride 8, i.e. block3 atrous with rate 2; RPN 3x3x512 conv with rate 2, 12 anchors per cell; 300
  proposals; 14x14 crops max-pooled to 7x7; block4 as box classifier; 90 classes; mask head of 3x
  3x3x256 convs on 33x33) as the Model Optimizer converts it for Open Model Zoo: inputs
  ``image_tensor`` [1, 3, 800, 1365] and ``image_info`` [1, 3]; Proposal (TF framework, no pre-NMS
  limit, IoU 0.7, 300 kept), bilinear ROIPooling, block4 on the 300 proposals, DetectionOutput (per
  class boxes, IoU 0.6, 100 per class, 100 kept), then block4 again on the 100 detections (the
  third stage) and the mask head with a sigmoid. Outputs ``reshape_do_2d`` [100, 7] and ``masks``
  [100, 90, 33, 33].

Weights are drawn like the references initialise them (Kaiming normal for ResNet convolutions,
Xavier for MLPerf's SSD blocks and heads, PyTorch defaults for Ultralytics, N(0, 0.01) for the TF
RPN, box and mask heads); batch norms are in inference mode and are folded by OpenVINO. No library
beyond torch and openvino is needed: torchvision, which has none of these three networks as
published, does not import next to this project's CPU torch.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from itertools import product
from typing import Any

import numpy as np
import torch
from torch import nn

SEED = 2024


def _to_ov(module: nn.Module, example: Any, inputs: list[tuple[str, list[int]]], outputs: tuple[str, ...] = ()
           ) -> Any:
    """Trace a module into an OpenVINO model with static input shapes, named inputs (and outputs)."""
    import openvino as ov

    module.eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # shapes are static on purpose
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit.trace, used inside convert_model
        warnings.simplefilter("ignore", FutureWarning)
        model = ov.convert_model(module, example_input=example, input=[shape for _, shape in inputs])
    for port, (name, _) in zip(model.inputs, inputs, strict=True):
        port.get_tensor().set_names({name})
        port.get_node().set_friendly_name(name)
    for port, name in zip(model.outputs, outputs, strict=False):
        port.get_tensor().set_names({name})
    return model


def calibrate_batch_norm(module: nn.Module, *inputs: torch.Tensor) -> nn.Module:
    """Set every batch norm's running statistics from one forward pass over `inputs`.

    With the initial statistics (mean 0, variance 1) batch norm is the identity, so randomly initialised
    residual stacks grow their activations by ~2x in variance per block (SSD's boxes overflow `exp`,
    class scores saturate) and YOLO's shrink towards denormals, which CPUs compute slowly. Trained
    networks keep activations near unit scale; so do these after this pass."""
    norms = [m for m in module.modules() if isinstance(m, nn.BatchNorm2d)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average over the pass
    module.train()
    with torch.no_grad():
        module(*inputs)
    return module.eval()


def _results(model: Any) -> list[Any]:
    """The producer outputs of a converted model's results, in order (to build on them)."""
    return [result.input_value(0) for result in model.get_results()]


def _splice(model: Any, sources: list[Any]) -> list[Any]:
    """Feed a converted sub-network from outputs of another graph: its parameters are replaced."""
    for parameter, source in zip(model.get_parameters(), sources, strict=True):
        for target in list(parameter.output(0).get_target_inputs()):
            target.replace_source_output(source)
    return _results(model)


def _finish(results: dict[str, Any], parameters: list[Any]) -> Any:
    """One ov.Model from named outputs, with plain tensor names on inputs and outputs only."""
    import openvino as ov
    from openvino import opset13 as ops

    keep = {p.get_friendly_name() for p in parameters}
    named = []
    for name, output in results.items():
        result = ops.result(output, name=name)
        named.append(result)
    model = ov.Model(named, parameters, "model")
    for op in model.get_ordered_ops():  # the spliced sub-networks may repeat inner tensor names
        if op.get_type_name() not in ("Parameter", "Result") or op.get_friendly_name() not in keep:
            for out in op.outputs():
                out.get_tensor().set_names(set())
    for parameter in parameters:
        parameter.output(0).get_tensor().set_names({parameter.get_friendly_name()})
    for (name, _), result in zip(results.items(), named, strict=True):
        result.input_value(0).get_tensor().set_names({name})
        result.output(0).get_tensor().set_names({name})
    return model


def _multiple(value: int, of: int) -> int:
    return max(of, value // of * of)


# -- YOLOv8 (Ultralytics) --------------------------------------------------------------------------


def _divisible(value: float, divisor: int = 8) -> int:
    return int(math.ceil(value / divisor) * divisor)


class YoloConv(nn.Module):
    """Ultralytics Conv: convolution without bias, batch norm (eps 1e-3), SiLU."""

    def __init__(self, c1: int, c2: int, k: int = 1, s: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, k // 2, bias=False)
        self.bn = nn.BatchNorm2d(c2, eps=1e-3, momentum=0.03)
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class YoloBottleneck(nn.Module):
    """Two 3x3 Conv with a residual connection when shapes allow (expansion 1.0 inside C2f)."""

    def __init__(self, c1: int, c2: int, shortcut: bool) -> None:
        super().__init__()
        self.cv1 = YoloConv(c1, c2, 3)
        self.cv2 = YoloConv(c2, c2, 3)
        self.add = shortcut and c1 == c2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


class C2f(nn.Module):
    """CSP bottleneck with two convolutions: split, n bottlenecks, concatenate every partial output."""

    def __init__(self, c1: int, c2: int, n: int, shortcut: bool) -> None:
        super().__init__()
        self.c = c2 // 2
        self.cv1 = YoloConv(c1, 2 * self.c, 1)
        self.cv2 = YoloConv((2 + n) * self.c, c2, 1)
        self.m = nn.ModuleList(YoloBottleneck(self.c, self.c, shortcut) for _ in range(n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = list(self.cv1(x).chunk(2, 1))
        for block in self.m:
            y.append(block(y[-1]))
        return self.cv2(torch.cat(y, 1))


class SPPF(nn.Module):
    """Spatial pyramid pooling, fast: three chained 5x5 max pools."""

    def __init__(self, c1: int, c2: int, k: int = 5) -> None:
        super().__init__()
        hidden = c1 // 2
        self.cv1 = YoloConv(c1, hidden, 1)
        self.cv2 = YoloConv(hidden * 4, c2, 1)
        self.m = nn.MaxPool2d(k, 1, k // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = [self.cv1(x)]
        for _ in range(3):
            y.append(self.m(y[-1]))
        return self.cv2(torch.cat(y, 1))


class DFL(nn.Module):
    """Distribution focal loss integral: softmax over 16 bins, expectation by a fixed 1x1 conv."""

    def __init__(self, bins: int = 16) -> None:
        super().__init__()
        self.bins = bins
        self.conv = nn.Conv2d(bins, 1, 1, bias=False).requires_grad_(False)
        self.conv.weight.data[:] = torch.arange(bins, dtype=torch.float).view(1, bins, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, a = x.shape
        return self.conv(x.view(b, 4, self.bins, a).transpose(2, 1).softmax(1)).view(b, 4, a)


class YoloDetect(nn.Module):
    """The decoupled YOLOv8 head (legacy v8 form) with in-graph decoding, as exported."""

    def __init__(self, classes: int, channels: tuple[int, ...], strides: tuple[int, ...], size: tuple[int, int]
                 ) -> None:
        super().__init__()
        self.classes, self.reg_max = classes, 16
        self.outputs = classes + 4 * self.reg_max
        c2, c3 = max(16, channels[0] // 4, 4 * self.reg_max), max(channels[0], min(classes, 100))
        self.cv2 = nn.ModuleList(nn.Sequential(YoloConv(c, c2, 3), YoloConv(c2, c2, 3),
                                               nn.Conv2d(c2, 4 * self.reg_max, 1)) for c in channels)
        self.cv3 = nn.ModuleList(nn.Sequential(YoloConv(c, c3, 3), YoloConv(c3, c3, 3),
                                               nn.Conv2d(c3, classes, 1)) for c in channels)
        self.dfl = DFL(self.reg_max)
        anchors, stride_of = [], []
        for stride in strides:  # Ultralytics make_anchors with offset 0.5, for the static input size
            h, w = math.ceil(size[0] / stride), math.ceil(size[1] / stride)
            sy, sx = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
            anchors.append(torch.stack((sx, sy), -1).view(-1, 2))
            stride_of.append(torch.full((h * w, 1), float(stride)))
        self.register_buffer("anchors", torch.cat(anchors).transpose(0, 1).unsqueeze(0))
        self.register_buffer("strides", torch.cat(stride_of).transpose(0, 1))

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        b = features[0].shape[0]
        x = [torch.cat((box(f), cls(f)), 1).view(b, self.outputs, -1)
             for f, box, cls in zip(features, self.cv2, self.cv3, strict=True)]
        box, cls = torch.cat(x, 2).split((4 * self.reg_max, self.classes), 1)
        lt, rb = self.dfl(box).chunk(2, 1)
        x1y1, x2y2 = self.anchors - lt, self.anchors + rb
        dbox = torch.cat(((x1y1 + x2y2) / 2, x2y2 - x1y1), 1) * self.strides
        return torch.cat((dbox, cls.sigmoid()), 1)


class YOLOv8(nn.Module):
    """yolov8.yaml: backbone (Conv/C2f x 3-6-6-3, SPPF), PAN neck, Detect on P3/P4/P5."""

    def __init__(self, size: tuple[int, int] = (608, 608), depth: float = 0.33, width: float = 0.25,
                 max_channels: int = 1024, classes: int = 80) -> None:
        super().__init__()

        def ch(c: int) -> int:
            return _divisible(min(c, max_channels) * width)

        def n(repeats: int) -> int:
            return max(round(repeats * depth), 1)

        self.stem = nn.Sequential(YoloConv(3, ch(64), 3, 2), YoloConv(ch(64), ch(128), 3, 2),
                                  C2f(ch(128), ch(128), n(3), True))
        self.p3 = nn.Sequential(YoloConv(ch(128), ch(256), 3, 2), C2f(ch(256), ch(256), n(6), True))
        self.p4 = nn.Sequential(YoloConv(ch(256), ch(512), 3, 2), C2f(ch(512), ch(512), n(6), True))
        self.p5 = nn.Sequential(YoloConv(ch(512), ch(1024), 3, 2), C2f(ch(1024), ch(1024), n(3), True),
                                SPPF(ch(1024), ch(1024), 5))
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.top_down4 = C2f(ch(1024) + ch(512), ch(512), n(3), False)
        self.top_down3 = C2f(ch(512) + ch(256), ch(256), n(3), False)
        self.down3 = YoloConv(ch(256), ch(256), 3, 2)
        self.bottom_up4 = C2f(ch(256) + ch(512), ch(512), n(3), False)
        self.down4 = YoloConv(ch(512), ch(512), 3, 2)
        self.bottom_up5 = C2f(ch(512) + ch(1024), ch(1024), n(3), False)
        self.head = YoloDetect(classes, (ch(256), ch(512), ch(1024)), (8, 16, 32), size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p3 = self.p3(self.stem(x))
        p4 = self.p4(p3)
        p5 = self.p5(p4)
        t4 = self.top_down4(torch.cat((self.up(p5), p4), 1))
        t3 = self.top_down3(torch.cat((self.up(t4), p3), 1))
        b4 = self.bottom_up4(torch.cat((self.down3(t3), t4), 1))
        b5 = self.bottom_up5(torch.cat((self.down4(b4), p5), 1))
        return self.head([t3, b4, b5])


def yolov8(size: int = 608, depth: float = 0.33, width: float = 0.25, classes: int = 80) -> Any:
    """YOLOv8 (nano by default) as an OpenVINO model: input ``images`` [1, 3, size, size]."""
    torch.manual_seed(SEED)
    module = YOLOv8((size, size), depth, width, classes=classes)
    example = torch.rand(1, 3, size, size)
    calibrate_batch_norm(module, example)
    return _to_ov(module, example, [("images", [1, 3, size, size])], ("output0",))


# -- SSD-ResNet34 (MLPerf inference, 1200x1200) ----------------------------------------------------


class BasicBlock(nn.Module):
    """torchvision ResNet BasicBlock (two 3x3 convs with batch norm, projection when shapes change)."""

    def __init__(self, c1: int, c2: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c1, c2, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c2)
        self.conv2 = nn.Conv2d(c2, c2, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c2)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = (nn.Sequential(nn.Conv2d(c1, c2, 1, stride, bias=False), nn.BatchNorm2d(c2))
                           if stride != 1 or c1 != c2 else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(y)) + identity)


def _basic_layer(c1: int, c2: int, blocks: int, stride: int) -> nn.Sequential:
    return nn.Sequential(BasicBlock(c1, c2, stride), *(BasicBlock(c2, c2, 1) for _ in range(blocks - 1)))


SSD_FEATURES_1200 = ((50, 50), (25, 25), (13, 13), (7, 7), (3, 3), (3, 3))
SSD_BOXES_PER_CELL = (4, 6, 6, 6, 4, 4)
SSD_ASPECT_RATIOS = ((2,), (2, 3), (2, 3), (2, 3), (2,), (2,))
SSD_SCALES = (21, 45, 99, 153, 207, 261, 315)


def ssd_default_boxes(size: int, features: tuple[tuple[int, int], ...]) -> np.ndarray:
    """MLPerf's dboxes_R34_coco: [boxes, 4] (cx, cy, w, h), normalized, in the heads' output order."""
    boxes = []
    for index, (fw, fh) in enumerate(features):
        step_w, step_h = int(size / fw), int(size / fh)
        fkw, fkh = size // step_w, size // step_h
        sk1 = int(SSD_SCALES[index] * size / 300) / size
        sk2 = int(SSD_SCALES[index + 1] * size / 300) / size
        sk3 = math.sqrt(sk1 * sk2)
        sizes = [(sk1, sk1), (sk3, sk3)]
        for alpha in SSD_ASPECT_RATIOS[index]:
            w, h = sk1 * math.sqrt(alpha), sk1 / math.sqrt(alpha)
            sizes += [(w, h), (h, w)]
        for w, h in sizes:
            for i, j in product(range(fw), range(fh)):
                boxes.append(((j + 0.5) / fkh, (i + 0.5) / fkw, w, h))
    return np.clip(np.asarray(boxes, dtype=np.float32), 0, 1)


class SSDResNet34(nn.Module):
    """ssd_r34.SSD_R34 with strides [3, 3, 2, 2, 2, 2]: locations and class scores decoded in-graph."""

    def __init__(self, size: int = 1200, layers: tuple[int, int, int] = (3, 4, 6), classes: int = 81) -> None:
        super().__init__()
        self.classes = classes
        # ResNet-34 conv1..conv4_x; conv4_x's first block has stride 1 (MLPerf's _ModifyBlock)
        self.backbone = nn.Sequential(
            nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, 1), _basic_layer(64, 64, layers[0], 1), _basic_layer(64, 128, layers[1], 2),
            _basic_layer(128, 256, layers[2], 1))
        out_channels = (256, 512, 512, 256, 256, 256)
        middle = (256, 256, 128, 128, 128)
        extra = []
        for index, (c_in, c_mid, c_out) in enumerate(zip(out_channels, middle, out_channels[1:], strict=False)):
            stride, padding = ((2, 1), (2, 1), (2, 1), (2, 0), (1, 0))[index]
            extra.append(nn.Sequential(nn.Conv2d(c_in, c_mid, 1), nn.ReLU(inplace=True),
                                       nn.Conv2d(c_mid, c_out, 3, stride, padding), nn.ReLU(inplace=True)))
        self.additional_blocks = nn.ModuleList(extra)
        self.loc = nn.ModuleList(nn.Conv2d(c, n * 4, 3, 3, 1) for n, c in zip(SSD_BOXES_PER_CELL, out_channels,
                                                                               strict=True))
        self.conf = nn.ModuleList(nn.Conv2d(c, n * classes, 3, 3, 1) for n, c in zip(SSD_BOXES_PER_CELL,
                                                                                      out_channels, strict=True))
        for module in self.backbone.modules():  # torchvision's ResNet initialisation
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        for layer in (*self.additional_blocks, *self.loc, *self.conf):  # MLPerf's _init_weights
            for param in layer.parameters():
                if param.dim() > 1:
                    nn.init.xavier_uniform_(param)
        features = self.feature_sizes(size)
        self.register_buffer("dboxes", torch.from_numpy(ssd_default_boxes(size, features)).unsqueeze(0))
        self.register_buffer("mean", torch.tensor([123.675, 116.28, 103.53]).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor([58.395, 57.12, 57.375]).view(1, 3, 1, 1))

    def feature_sizes(self, size: int) -> tuple[tuple[int, int], ...]:
        """Grid of each head for a square input of `size` (50/25/13/7/3/3 at 1200)."""
        grid = math.floor((math.floor((size + 6 - 7) / 2 + 1) + 2 - 3) / 2 + 1)  # conv1, max pool
        grid = math.floor((grid + 2 - 3) / 2 + 1)  # conv3_x stride 2; conv4_x keeps it
        grids = [grid]
        for stride, padding in ((2, 1), (2, 1), (2, 1), (2, 0), (1, 0)):
            grids.append(math.floor((grids[-1] + 2 * padding - 3) / stride + 1))
        heads = [math.floor((g + 2 - 3) / 3 + 1) for g in grids]
        return tuple((h, h) for h in heads)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.backbone((image - self.mean) / self.scale)  # the --mean_values/--scale_values of OMZ
        sources = [x]
        for block in self.additional_blocks:
            x = block(x)
            sources.append(x)
        b = image.shape[0]
        locs = torch.cat([loc(s).reshape(b, 4, -1) for s, loc in zip(sources, self.loc, strict=True)], 2)
        confs = torch.cat([conf(s).reshape(b, self.classes, -1) for s, conf in zip(sources, self.conf, strict=True)],
                          2)
        # scale_back_batch: xywh deltas (scales 0.1 / 0.2) on the default boxes, to ltrb; softmax
        locs = locs.permute(0, 2, 1)
        xy = 0.1 * locs[:, :, :2] * self.dboxes[:, :, 2:] + self.dboxes[:, :, :2]
        wh = (0.2 * locs[:, :, 2:]).exp() * self.dboxes[:, :, 2:]
        boxes = torch.cat((xy - 0.5 * wh, xy + 0.5 * wh), 2)
        return boxes, confs.softmax(1)


def ssd_resnet34(size: int = 1200, layers: tuple[int, int, int] = (3, 4, 6), classes: int = 81) -> Any:
    """MLPerf SSD-ResNet34 with its NMS: input ``image`` [1, 3, size, size]."""
    from openvino import opset9
    from openvino import opset13 as ops

    torch.manual_seed(SEED)
    module = SSDResNet34(size, layers, classes)
    example = torch.rand(1, 3, size, size) * 255
    calibrate_batch_norm(module.backbone, example[:, :, : size // 2, : size // 2])  # its only batch norms
    net = _to_ov(module, example, [("image", [1, 3, size, size])])
    boxes, scores = _results(net)
    # per class: score > 0.05, best 200, NMS at IoU 0.5; then the best 200 over all classes
    nms = opset9.multiclass_nms(boxes, scores, sort_result_type="score", sort_result_across_batch=False,
                                output_type="i64", iou_threshold=0.5, score_threshold=0.05, nms_top_k=200,
                                keep_top_k=200, background_class=0, normalized=True)
    selected = nms.output(0)  # [N, 6]: class, score, x1, y1, x2, y2

    def columns(start: int, stop: int) -> Any:
        return ops.slice(selected, np.array([start]), np.array([stop]), np.array([1]), np.array([1]))

    bboxes = ops.unsqueeze(columns(2, 6), np.array([0]))
    labels = ops.unsqueeze(ops.convert(ops.squeeze(columns(0, 1), np.array([1])), "i64"), np.array([0]))
    scores_out = ops.unsqueeze(ops.squeeze(columns(1, 2), np.array([1])), np.array([0]))
    return _finish({"bboxes": bboxes.output(0), "labels": labels.output(0), "scores": scores_out.output(0)},
                   net.get_parameters())


# -- Mask R-CNN ResNet-50 atrous (TF Object Detection API, as converted for Open Model Zoo) --------


class SlimBottleneck(nn.Module):
    """TF-slim resnet_v1 bottleneck: 1x1, 3x3 (stride, rate), 1x1; the stride sits on the 3x3 conv."""

    def __init__(self, c1: int, depth: int, bottleneck: int, stride: int, rate: int) -> None:
        super().__init__()
        self.shortcut = (nn.MaxPool2d(1, stride) if stride > 1 else nn.Identity()) if c1 == depth else \
            nn.Sequential(nn.Conv2d(c1, depth, 1, stride, bias=False), nn.BatchNorm2d(depth))
        self.conv1 = nn.Conv2d(c1, bottleneck, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(bottleneck)
        self.conv2 = nn.Conv2d(bottleneck, bottleneck, 3, stride, rate, dilation=rate, bias=False)
        self.bn2 = nn.BatchNorm2d(bottleneck)
        self.conv3 = nn.Conv2d(bottleneck, depth, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(depth)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        return self.relu(self.bn3(self.conv3(y)) + self.shortcut(x))


def _slim_block(c1: int, base: int, units: int, stride: int, rate: int, output_stride_reached: bool
                ) -> tuple[nn.Sequential, int]:
    """One resnet_v1_block (stride in its last unit), with slim's output_stride rule already applied."""
    layers, c = [], c1
    for index in range(units):
        last = index == units - 1
        unit_stride = stride if last and not output_stride_reached else 1
        layers.append(SlimBottleneck(c, base * 4, base, unit_stride, rate))
        c = base * 4
    return nn.Sequential(*layers), c


def _init_resnet(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")


class MaskRCNNFirstStage(nn.Module):
    """Mean subtraction, ResNet-50 v1 conv1..block3 at output stride 8 (block3 atrous, rate 2), RPN."""

    def __init__(self, units: tuple[int, int, int] = (3, 4, 6), anchors: int = 12) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor([123.68, 116.779, 103.939]).view(1, 3, 1, 1))
        self.root = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
                                  nn.MaxPool2d(3, 2, 1))
        # slim stack_blocks_dense with output_stride 8: block1 keeps its stride (4 -> 8); block2's and
        # block3's strides become atrous rates (block2 at rate 1, block3 at rate 2)
        self.block1, c = _slim_block(64, 64, units[0], 2, 1, False)
        self.block2, c = _slim_block(c, 128, units[1], 2, 1, True)
        self.block3, c = _slim_block(c, 256, units[2], 2, 2, True)
        self.rpn = nn.Sequential(nn.Conv2d(c, 512, 3, 1, 2, dilation=2), nn.ReLU6(inplace=True))
        self.rpn_class = nn.Conv2d(512, anchors * 2, 1)
        self.rpn_box = nn.Conv2d(512, anchors * 4, 1)
        self.anchors = anchors
        _init_resnet(self)
        for conv in (self.rpn[0], self.rpn_class, self.rpn_box):
            nn.init.normal_(conv.weight, std=0.01)
            nn.init.zeros_(conv.bias)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        features = self.block3(self.block2(self.block1(self.root(image - self.mean))))
        hidden = self.rpn(features)
        logits = self.rpn_class(hidden)
        b, _, h, w = logits.shape
        # TF lays out (anchor, class) per cell; OpenVINO's Proposal wants all background then all
        # foreground probabilities (the Model Optimizer's reshape, softmax and transpose)
        probs = logits.view(b, self.anchors, 2, h, w).softmax(2).transpose(1, 2).reshape(b, 2 * self.anchors, h, w)
        return features, probs, self.rpn_box(hidden)


class BoxClassifierFeatures(nn.Module):
    """Second stage feature extractor: 2x2 max pool of the 14x14 crops, then ResNet-50 block4."""

    def __init__(self, c1: int = 1024, units: int = 3) -> None:
        super().__init__()
        self.pool = nn.MaxPool2d(2, 2)
        self.block4, self.channels = _slim_block(c1, 512, units, 1, 1, True)
        _init_resnet(self)

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        return self.block4(self.pool(crops))


class MaskRCNNBoxHead(nn.Module):
    """Box classifier: block4, spatial mean, fully connected class (91) and per-class box (90x4) layers."""

    def __init__(self, features: BoxClassifierFeatures, classes: int) -> None:
        super().__init__()
        self.features = features
        self.classes = classes
        self.class_fc = nn.Linear(features.channels, classes + 1)
        self.box_fc = nn.Linear(features.channels, classes * 4)
        for fc in (self.class_fc, self.box_fc):
            nn.init.xavier_uniform_(fc.weight)
            nn.init.zeros_(fc.bias)

    def forward(self, crops: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        flat = self.features(crops).mean((2, 3))
        n = flat.shape[0]
        probs = self.class_fc(flat).softmax(1)  # score_converter: SOFTMAX
        boxes = self.box_fc(flat).view(n, self.classes, 4)
        # DetectionOutput wants a box for the background class too (the Model Optimizer adds zeros),
        # and the TF box coder's scale factors 10, 10, 5, 5 folded into the offsets
        boxes = torch.cat((torch.zeros_like(boxes[:, :1]), boxes), 1) * torch.tensor([0.1, 0.1, 0.2, 0.2])
        return boxes.reshape(1, -1), probs.reshape(1, -1)


class MaskRCNNMaskHead(nn.Module):
    """Third stage: block4 again on the detections, bilinear resize to 33x33, 3x conv 3x3x256, class masks."""

    def __init__(self, features: BoxClassifierFeatures, classes: int, size: int = 33, layers: int = 4) -> None:
        super().__init__()
        self.features = features
        self.size = size
        # _get_mask_predictor_conv_depth(2048, 90): 2 ** round((2 * 11 + 3 * log2(90)) / 5) = 256
        depth = int(2 ** round((2 * math.log2(features.channels) + 3 * math.log2(classes)) / 5))
        convs: list[nn.Module] = []
        c = features.channels
        for _ in range(layers - 1):
            convs += [nn.Conv2d(c, depth, 3, 1, 1), nn.ReLU(inplace=True)]
            c = depth
        self.convs = nn.Sequential(*convs)
        self.masks = nn.Conv2d(c, classes, 3, 1, 1)
        for conv in (*[m for m in self.convs if isinstance(m, nn.Conv2d)], self.masks):
            nn.init.normal_(conv.weight, std=0.01)
            nn.init.zeros_(conv.bias)

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        x = nn.functional.interpolate(self.features(crops), size=(self.size, self.size), mode="bilinear",
                                      align_corners=True)
        return self.masks(self.convs(x)).sigmoid()


@dataclass(frozen=True)
class MaskRCNNSpec:
    """The knobs of mask_rcnn_resnet50_atrous_coco (defaults: its pipeline config and OMZ's input)."""

    height: int = 800
    width: int = 1365
    units: tuple[int, int, int, int] = (3, 4, 6, 3)
    classes: int = 90
    proposals: int = 300  # first_stage_max_proposals
    detections: int = 100  # max_detections_per_class and max_total_detections
    crop: int = 14  # initial_crop_size
    mask: int = 33  # mask_height, mask_width
    scales: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0)
    ratios: tuple[float, ...] = (0.5, 1.0, 2.0)


def mask_rcnn(spec: MaskRCNNSpec = MaskRCNNSpec()) -> Any:
    """Mask R-CNN as OMZ's IR: inputs ``image_tensor`` and ``image_info``, outputs boxes and masks."""
    import openvino as ov
    from openvino import opset2, opset4, opset8
    from openvino import opset13 as ops

    torch.manual_seed(SEED)
    anchors = len(spec.scales) * len(spec.ratios)
    first = MaskRCNNFirstStage(spec.units[:3], anchors)
    features_net = BoxClassifierFeatures(1024, spec.units[3])
    box_head = MaskRCNNBoxHead(features_net, spec.classes)
    mask_head = MaskRCNNMaskHead(features_net, spec.classes, spec.mask)

    # These sub-networks have no size-dependent constants: they are traced on small examples (full-size
    # torch passes are what make a build slow) and converted with the full static shapes.
    image_shape = [1, 3, spec.height, spec.width]
    small = torch.rand(1, 3, _multiple(spec.height // 2, 8), _multiple(spec.width // 2, 8)) * 255
    calibrate_batch_norm(first, small)
    with torch.no_grad():  # block4's statistics from 14x14 windows of the first stage's features
        feature_map = first(small)[0]
    windows = [feature_map[:, :, y:y + spec.crop, x:x + spec.crop]
               for y in range(0, feature_map.shape[2] - spec.crop + 1, spec.crop)
               for x in range(0, feature_map.shape[3] - spec.crop + 1, spec.crop)]
    windows = windows or [nn.functional.interpolate(feature_map, size=(spec.crop, spec.crop))]
    calibrate_batch_norm(features_net, torch.cat(windows[:16]))
    stage1 = _to_ov(first, small[:, :, :64, :64], [("image_tensor", image_shape)])
    features, rpn_probs, rpn_boxes = _results(stage1)
    image_info = ops.parameter([1, 3], ov.Type.f32, name="image_info")
    # with these layouts benchmark_app fills image_info with [height, width, 1] of image_tensor (else random)
    image_info.set_layout(ov.Layout("NC"))
    stage1.get_parameters()[0].set_layout(ov.Layout("NCHW"))
    proposals = opset4.proposal(rpn_probs, rpn_boxes, ops.reshape(image_info, np.array([3]), False), {
        "base_size": np.uint32(256), "pre_nms_topn": np.uint32(2**31 - 1),
        "post_nms_topn": np.uint32(spec.proposals), "nms_thresh": 0.7, "feat_stride": np.uint32(8),
        "min_size": np.uint32(1), "ratio": list(spec.ratios), "scale": list(spec.scales),
        "clip_before_nms": True, "clip_after_nms": False, "normalize": True, "box_size_scale": 5.0,
        "box_coordinate_scale": 10.0, "framework": "tensorflow"}).output(0)  # [proposals, 5]
    crops = opset2.roi_pooling(features, proposals, output_roi=[spec.crop, spec.crop], spatial_scale=1.0,
                               method="bilinear")
    crop_shape = [spec.proposals, 1024, spec.crop, spec.crop]
    stage2 = _to_ov(box_head, torch.rand(2, *crop_shape[1:]), [("crops", crop_shape)])
    box_offsets, class_probs = _splice(stage2, [crops.output(0)])
    priors = ops.reshape(ops.slice(proposals, np.array([1]), np.array([5]), np.array([1]), np.array([1])),
                         np.array([1, 1, spec.proposals * 4]), False)
    detections = opset8.detection_output(box_offsets, class_probs, priors, {
        "background_label_id": 0, "top_k": spec.detections, "variance_encoded_in_target": True,
        "keep_top_k": [spec.detections], "code_type": "caffe.PriorBoxParameter.CENTER_SIZE",
        "share_location": False, "nms_threshold": 0.6, "confidence_threshold": 0.0, "clip_after_nms": True,
        "clip_before_nms": False, "decrease_label_id": False, "normalized": True, "input_height": 1,
        "input_width": 1, "objectness_score": 0.0})
    flat = ops.reshape(detections, np.array([-1, 7]), False)  # reshape_do_2d
    rois = ops.concat([ops.slice(flat, np.array([0]), np.array([1]), np.array([1]), np.array([1])),
                       ops.slice(flat, np.array([3]), np.array([7]), np.array([1]), np.array([1]))], 1)
    det_crops = opset2.roi_pooling(features, rois, output_roi=[spec.crop, spec.crop], spatial_scale=1.0,
                                   method="bilinear")
    det_shape = [spec.detections, 1024, spec.crop, spec.crop]
    stage3 = _to_ov(mask_head, torch.rand(2, *det_shape[1:]), [("detected_crops", det_shape)])
    (masks,) = _splice(stage3, [det_crops.output(0)])
    return _finish({"reshape_do_2d": flat.output(0), "masks": masks},
                   [*stage1.get_parameters(), image_info])

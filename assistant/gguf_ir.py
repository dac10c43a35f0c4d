"""Rewrites of the IR openvino_genai builds from a GGUF: exact Q4_1 weights (as int8 per row), an int8 LM
head and fused projections. `rewrite_ir` applies them once, when llm.py caches the IR."""

from __future__ import annotations

import hashlib
import logging
import os
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# -- exact Q4_1 weights -------------------------------------------------------------------------------
# openvino_genai's GGUF reader stores a Q4_1 block (x = d*q + m, q in 0..15, d and m f16 per 32 weights)
# as u4 q with a *u4 integer* zero point round(-m/d): every weight is off by up to d/2, as much as the
# 4-bit quantization error itself. llama.cpp and transformers compute d*q + m exactly. Perplexity over
# 12,417 tokens (the FAQ, another text, this project's READMEs; 1,024-token windows): stock IR 36.35,
# exact weights 29.76. OpenVINO's CPU kernels have no fast path for a fractional zero point, so the IR is
# rewritten once, when it is cached, with the exact values requantized to **int8 per output row**
# (symmetric, f16 scale max|w|/127 per row): 29.73, the same quality (error <= half an int8 step,
# a row's max|w|/254, against d/2 for the stock import). It is also the fastest
# exact form measured here (plain decoding, fresh processes, huge pages on):
#   u8 in 32-value groups, q8 = 16q + c with a u8 zero point (error <= d/32; the previous rewrite)  1.0x
#   int8 per row (this rewrite)                                              0.88x (direct), 0.93x genai
#   stock u4 (rounded zero points, 36.35)                                    0.74x (direct)
# Alternatives measured before (first 1,400 tokens of the FAQ / of another text: exact 8.55 / 12.14,
# stock IR 10.49 / 13.84, int8 per row 8.59 / 12.14):
#   stock u4 + a per-channel bias for the mean rounding error (calibrated on other text)  9.84 / 13.87
#   NNCF int4_asym g32 from the exact weights, scale estimation (+AWQ), 32 x 256 tokens   9.18 (8.96) /
#                                                                 13.57 (13.14); as fast as the stock IR
#   stock u4 + the exact correction per group, (x summed per group) @ (m + d*z) added  8.58; 0.95-1.04x
#     of u8 after each projection: exact, but 3 more nodes per projection eat most of the u4 gain
#   u4 + the correction as one more u4 group of the same MatMul, its input padded with the group sums of
#     x (ReduceSum, Pad, Concat per input)                          8.58; slower than u8 (the same reason)
#   u4 with f16 zero points (exact)                          8.55; as fast as u8, 1.5x time to first token
# Per-FC cost is set by the bytes streamed (~13 GB/s for a model-sized chain of FCs here) plus ~25 us
# per node: the 32-value groups cost little with 4 KiB pages, but with huge pages (hugepages.py) they do.
GGUF_IR_FORMAT = "q41i8-lmi8-fused"  # part of llm.py's IR cache key: change it when a rewrite changes
_GGUF_Q4_1 = 3
_GGUF_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q",
                 12: "<d"}


def _gguf_tensors(path: Path) -> tuple[Any, list[tuple[str, int, tuple[int, ...], int]]]:
    """The file (memory-mapped) and its tensor table: (name, ggml type, dims, absolute offset)."""
    import struct

    import numpy as np

    data = np.memmap(path, dtype=np.uint8, mode="r")
    pos = 0

    def read(fmt: str) -> Any:
        nonlocal pos
        value = struct.unpack_from(fmt, data, pos)[0]
        pos += struct.calcsize(fmt)
        return value

    def read_str() -> str:
        nonlocal pos
        size = read("<Q")
        text = bytes(data[pos:pos + size]).decode("utf-8", errors="replace")
        pos += size
        return text

    def read_value(kind: int) -> Any:
        if kind in _GGUF_SCALARS:
            return read(_GGUF_SCALARS[kind])
        if kind == 8:
            return read_str()
        if kind == 9:
            item, count = read("<I"), read("<Q")
            return [read_value(item) for _ in range(count)]
        raise ValueError(f"unknown GGUF value type {kind}")

    if bytes(data[:4]) != b"GGUF":
        raise ValueError("not a GGUF file")
    pos = 4
    version, n_tensors, n_kv = read("<I"), read("<Q"), read("<Q")
    if version < 2:
        raise ValueError(f"GGUF version {version} is not supported")
    metadata = {}
    for _ in range(n_kv):
        key = read_str()
        metadata[key] = read_value(read("<I"))
    infos = []
    for _ in range(n_tensors):
        name = read_str()
        dims = tuple(read("<Q") for _ in range(read("<I")))
        infos.append((name, read("<I"), dims, read("<Q")))
    alignment = int(metadata.get("general.alignment", 32))
    start = (pos + alignment - 1) // alignment * alignment
    return data, [(name, kind, dims, start + offset) for name, kind, dims, offset in infos]


def row_key(scales: Any, values: Any) -> bytes:
    """The key of a Q4_1 row in `q4_1_rows`: a hash of its f16 scales and 4-bit values."""
    return hashlib.blake2b(scales.tobytes() + values.tobytes(), digest_size=16).digest()


def q4_1_rows(path: Path, key: Callable[[Any, Any], bytes] = row_key) -> dict[bytes, tuple[Any, Any]]:
    """Every Q4_1 row of the GGUF: its d and m (f16 per 32), keyed by `key(d, q)` (q: 4-bit values)."""
    import numpy as np

    data, tensors = _gguf_tensors(path)
    rows: dict[bytes, tuple[Any, Any]] = {}
    for _name, kind, dims, offset in tensors:
        if kind != _GGUF_Q4_1 or dims[0] % 32:
            continue
        n_rows = int(np.prod(dims[1:], dtype=np.int64))
        blocks = np.asarray(data[offset:offset + n_rows * dims[0] // 32 * 20]).reshape(n_rows, -1, 20)
        d = np.ascontiguousarray(blocks[:, :, 0:2]).view(np.float16)[..., 0]
        m = np.ascontiguousarray(blocks[:, :, 2:4]).view(np.float16)[..., 0]
        nibbles = blocks[:, :, 4:]
        q = np.concatenate([nibbles & 0x0F, nibbles >> 4], axis=2)  # low nibbles hold values 0-15
        for r in range(n_rows):
            rows[key(d[r], q[r])] = (d[r], m[r])
    return rows


def _u4_values(node: Any) -> Any:
    """The values of a u4 Constant (two per byte, low nibble first) in its shape."""
    import numpy as np

    shape = tuple(node.get_output_shape(0))
    packed = np.frombuffer(node.get_data().tobytes(), dtype=np.uint8)
    values = np.empty(packed.size * 2, dtype=np.uint8)
    values[0::2], values[1::2] = packed & 0x0F, packed >> 4
    return values[: int(np.prod(shape))].reshape(shape)


def _lm_head_int8(model: Any) -> None:
    """The LM head (tied to the Q8_0 embedding in the GGUF: u8 in groups of 32 with f16 scales) as int8
    per output channel: 9% less time per token (paired median of 6 interleaved rounds, p10-p90
    1.03-1.15x), perplexity 28.01 → 28.10 on the FAQ text. The embedding lookup keeps the GGUF's values."""
    import numpy as np
    import openvino as ov
    from openvino import opset13
    from openvino.passes import ConstantFolding, Manager

    head = None
    for op in model.get_ops():
        if op.get_type_name() == "MatMul":
            dim = op.get_output_partial_shape(0)[-1]
            if dim.is_static and (head is None or dim.get_length() > head[0]):
                head = (dim.get_length(), op)
    if head is None:
        return
    source = head[1].input_value(1)
    stack, quantized = [source.get_node()], False
    while stack:  # only a quantized (u8/i8) weight is re-quantized; f16/f32 heads stay as they are
        node = stack.pop()
        if node.get_type_name() == "Parameter":
            return
        if node.get_type_name() == "Constant" and node.get_output_element_type(0) in (ov.Type.u8, ov.Type.i8):
            quantized = True
        stack.extend(node.input_value(i).get_node() for i in range(node.get_input_size()))
    if not quantized:
        return
    folded = ov.Model([opset13.result(source)], []).clone()  # folding a clone leaves the embedding alone
    manager = Manager()
    manager.register_pass(ConstantFolding())
    manager.run_passes(folded)
    weight = np.array(folded.get_results()[0].input_value(0).get_node().get_data(), dtype=np.float32)
    scale = np.maximum(np.abs(weight).max(axis=1, keepdims=True), 1e-12) / 127.0
    q = np.clip(np.round(weight / scale), -127, 127).astype(np.int8)
    head[1].input(1).replace_source_output(
        opset13.multiply(opset13.convert(opset13.constant(q), ov.Type.f32),
                         opset13.constant(scale.astype(np.float32))).output(0))




def q4_1_weights(model: Any, gguf: Path) -> Iterator[tuple[Any, Any, Any, Any, Any]]:
    """Each Q4_1 weight of the IR with its GGUF values: (subtract, multiply, q, d, m), q [rows, groups, 32].

    A weight is (Convert(u4 q) - Convert(u4 zero point)) * f16 scales; each row is matched to its GGUF
    row by scales and values (openvino_genai may reorder rows, e.g. of attn_q/attn_k). Nothing if the
    GGUF has no Q4_1 tensors."""
    import numpy as np
    import openvino as ov

    rows = q4_1_rows(gguf)
    if not rows:
        return
    for op in model.get_ops():
        if op.get_type_name() != "Subtract":
            continue
        w_convert, zp_convert = (op.input_value(i).get_node() for i in range(2))
        if w_convert.get_type_name() != "Convert" or zp_convert.get_type_name() != "Convert":
            continue
        weight, zero = w_convert.input_value(0).get_node(), zp_convert.input_value(0).get_node()
        if {weight.get_output_element_type(0), zero.get_output_element_type(0)} != {ov.Type.u4}:
            continue
        multiply = next(iter(op.output(0).get_target_inputs())).get_node()
        scale = multiply.input_value(1).get_node()
        if multiply.get_type_name() != "Multiply" or scale.get_type_name() != "Constant":
            continue
        q = _u4_values(weight)
        d = np.array(scale.get_data(), dtype=np.float16).reshape(q.shape[0], q.shape[1])
        m = np.empty(d.shape, dtype=np.float32)
        for r in range(q.shape[0]):
            match = rows.get(row_key(d[r], q[r]))
            if match is None:
                raise ValueError(f"{op.get_friendly_name()}: row {r} is not in the GGUF")
            m[r] = match[1]
        yield op, multiply, q, d, m


def _int8_rows(weight: Any) -> tuple[Any, Any]:
    """Symmetric int8 per row: (f16 scales max|w|/127 [rows, 1], int8 values); no value is clipped, so
    each is within half a step of `weight`. (Scales chosen per row for the least squared error, which
    clips a few of the largest weights, gave the same perplexity.)"""
    import numpy as np

    scale = (np.maximum(np.abs(weight).max(axis=1, keepdims=True), 1e-8) / 127).astype(np.float16)
    # the f16 scale may be a hair small: max|w| / scale <= 127.07, which still rounds to 127
    return scale, np.clip(np.round(weight / scale.astype(np.float32)), -127, 127).astype(np.int8)


def q4_1_int8(model: Any, gguf: Path) -> int:
    """Replace the model's Q4_1 weights by the GGUF's exact d*q + m requantized to int8 per output row
    (see above); the number of weights rewritten."""
    import numpy as np
    import openvino as ov
    from openvino import opset13

    rewritten = 0
    for _subtract, multiply, q, d, m in q4_1_weights(model, gguf):
        reshape = next(iter(multiply.output(0).get_target_inputs())).get_node()
        if reshape.get_type_name() != "Reshape":
            raise ValueError(f"{multiply.get_friendly_name()}: expected a Reshape after the decompression")
        exact = (d.astype(np.float32)[..., None] * q + m[..., None]).reshape(q.shape[0], -1)
        scale, q8 = _int8_rows(exact)
        weight = opset13.multiply(opset13.convert(opset13.constant(q8), ov.Type.f16), opset13.constant(scale))
        reshape.output(0).replace(weight.output(0))
        rewritten += 1
    return rewritten


# -- fused projections ----------------------------------------------------------------------------------
# q/k/v read the same normalized activations, and so do gate/up. One MatMul over the concatenated weights
# and a VariadicSplit replace them: 90 fewer FullyConnected nodes in SmolLM2's 30 layers, and the
# activations are quantized (dynamic quantization) once instead of two or three times. The weights and
# their decompression are only concatenated, so the logits do not change (perplexity identical to 3
# decimals). Plain decoding, 600-token prompt: 0.93x time per token of the unfused IR with
# `python -m benchmarks.llm_compare` (a fresh process per run, 6 rounds), 0.90-0.97x in one process.

def _compressed_weight(matmul: Any) -> tuple[Any, Any | None, Any] | None:
    """(values, zero point, scale) Constants of a MatMul's weight: Convert(Reshape((Convert(values) -
    Convert(zero point)) * scale)) in groups, or Convert(Convert(values) * scale) per row (zero point
    None); None for any other weight."""
    node = matmul.input_value(1).get_node()
    if node.get_type_name() == "Convert":
        node = node.input_value(0).get_node()
    if node.get_type_name() == "Multiply":  # per row: no groups, no zero point
        convert, scale = (node.input_value(i).get_node() for i in range(2))
        if convert.get_type_name() != "Convert" or scale.get_type_name() != "Constant":
            return None
        values = convert.input_value(0).get_node()
        return (values, None, scale) if values.get_type_name() == "Constant" else None
    if node.get_type_name() != "Reshape":
        return None
    multiply = node.input_value(0).get_node()
    if multiply.get_type_name() != "Multiply":
        return None
    subtract, scale = (multiply.input_value(i).get_node() for i in range(2))
    if subtract.get_type_name() != "Subtract" or scale.get_type_name() != "Constant":
        return None
    converts = [subtract.input_value(i).get_node() for i in range(2)]
    if any(c.get_type_name() != "Convert" for c in converts):
        return None
    values, zero = (c.input_value(0).get_node() for c in converts)
    if values.get_type_name() != "Constant" or zero.get_type_name() != "Constant":
        return None
    return values, zero, scale


def _constant_values(node: Any) -> Any:
    import numpy as np
    import openvino as ov

    if node.get_output_element_type(0) == ov.Type.u4:
        return _u4_values(node)
    return np.array(node.get_data()).reshape(tuple(node.get_output_shape(0)))


def fuse_projections(model: Any) -> int:
    """Merge the compressed MatMuls that share an input (see above); the number of groups merged."""
    import numpy as np
    import openvino as ov
    from openvino import opset13

    groups: dict[tuple[str, int], list[Any]] = defaultdict(list)
    for op in model.get_ops():
        if (op.get_type_name() == "MatMul" and op.get_attributes().get("transpose_b")
                and not op.get_attributes().get("transpose_a") and _compressed_weight(op) is not None):
            source = op.input_value(0)
            groups[(source.get_node().get_friendly_name(), source.get_index())].append(op)
    fused = 0
    for matmuls in groups.values():
        if len(matmuls) < 2:
            continue
        parts = [_compressed_weight(m) for m in matmuls]
        types = {tuple(c.get_output_element_type(0) if c is not None else None for c in part) for part in parts}
        values = [_constant_values(part[0]) for part in parts]
        if len(types) != 1 or len({v.shape[1:] for v in values}) != 1 or values[0].ndim not in (2, 3):
            continue
        value_type, zero_type, scale_type = types.pop()
        if (zero_type is None) != (values[0].ndim == 2):
            continue
        sizes = [v.shape[0] for v in values]
        merged = np.concatenate(values)
        scales = np.concatenate([_constant_values(p[2]) for p in parts])
        decompressed = opset13.convert(opset13.constant(merged, dtype=value_type), ov.Type.f16)
        if zero_type is not None:
            zeros = np.concatenate([_constant_values(p[1]) for p in parts])
            decompressed = opset13.subtract(decompressed, opset13.convert(
                opset13.constant(zeros, dtype=zero_type), ov.Type.f16))
        decompressed = opset13.multiply(decompressed, opset13.constant(scales, dtype=scale_type))
        if merged.ndim == 3:
            rows, groups_per_row, group = merged.shape
            decompressed = opset13.reshape(decompressed, opset13.constant(
                np.array([rows, groups_per_row * group], dtype=np.int64)), False)
        weight = opset13.convert(decompressed, ov.Type.f32)
        matmul = opset13.matmul(matmuls[0].input_value(0), weight, False, True)
        split = opset13.variadic_split(matmul, opset13.constant(np.int64(-1)),
                                       opset13.constant(np.array(sizes, dtype=np.int64)))
        for i, old in enumerate(matmuls):
            old.output(0).replace(split.output(i))
        fused += 1
    return fused


def rewrite_ir(xml: Path, gguf: Path) -> bool:
    """Apply the rewrites above to the IR at `xml` (built from `gguf`) in place; True if it changed.

    Exact Q4_1 weights come with the int8 LM head; projections are fused in any case. On any error the
    IR is left as openvino_genai wrote it (logged)."""
    import openvino as ov

    try:
        model = ov.Core().read_model(str(xml))
        exact = q4_1_int8(model, gguf)
        if exact:
            _lm_head_int8(model)
        fused = fuse_projections(model)
        if not exact and not fused:
            return False
        model.validate_nodes_and_infer_types()
        tmp = xml.with_name("rewritten.xml")
        ov.save_model(model, str(tmp), compress_to_fp16=False)
        del model
        os.replace(tmp.with_suffix(".bin"), xml.with_suffix(".bin"))
        os.replace(tmp, xml)
        log.info("rewrote the IR of %s: %d Q4_1 weights exact to int8, %d fused projections", gguf.name, exact,
                 fused)
        return True
    except Exception as exc:  # a rewrite is an optimisation: never worth failing the load for
        log.warning("kept openvino_genai's IR for %s: %s", gguf.name, exc)
        return False

"""The IR rewrites for GGUF models: fused projections keep the outputs, cached Q4_1 weights are exact."""

from __future__ import annotations

import numpy as np
import openvino as ov
import pytest
from openvino import opset13

from assistant.config import Settings
from assistant.gguf_ir import GGUF_IR_FORMAT, fuse_projections, q4_1_rows
from assistant.llm import OpenVINOLLM
from assistant.models import resolve_llm_path

RNG = np.random.default_rng(7)


def _compressed(rows: int, cols: int, value_type: ov.Type) -> ov.Output:
    """A weight the way openvino_genai writes one: Convert(Reshape((values - zero point) * scale))."""
    high = 16 if value_type == ov.Type.u4 else 256
    values = opset13.constant(RNG.integers(0, high, (rows, cols // 32, 32)).astype(np.uint8), dtype=value_type)
    zero = opset13.constant(RNG.integers(0, high, (rows, cols // 32, 1)).astype(np.uint8), dtype=value_type)
    scale = opset13.constant((RNG.random((rows, cols // 32, 1)) * 0.05).astype(np.float16))
    centered = opset13.subtract(opset13.convert(values, ov.Type.f16), opset13.convert(zero, ov.Type.f16))
    weight = opset13.multiply(centered, scale)
    shape = opset13.constant(np.array([rows, cols], dtype=np.int64))
    return opset13.convert(opset13.reshape(weight, shape, False), ov.Type.f32).output(0)


def _layer(value_type: ov.Type) -> ov.Model:
    """q/k/v-like projections of one input and gate/up-like ones of another."""
    x = opset13.parameter([-1, -1, 64], ov.Type.f32, name="x")
    normed = opset13.multiply(x, opset13.constant(np.float32(0.5)))
    q, k, v = (opset13.matmul(x, _compressed(n, 64, value_type), False, True) for n in (64, 32, 32))
    gate, up = (opset13.matmul(normed, _compressed(96, 64, value_type), False, True) for _ in range(2))
    outputs = [q, k, v, opset13.multiply(opset13.sigmoid(gate), up)]
    return ov.Model([opset13.result(o) for o in outputs], [x])


def _run(model: ov.Model, x: np.ndarray) -> list[np.ndarray]:
    compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    result = compiled.create_infer_request().infer([x])
    return [result[out] for out in compiled.outputs]


def _matmuls(model: ov.Model) -> int:
    return sum(op.get_type_name() == "MatMul" for op in model.get_ops())


@pytest.mark.parametrize("value_type", [ov.Type.u4, ov.Type.u8])
def test_fused_projections_give_the_same_outputs(value_type):
    model = _layer(value_type)
    x = RNG.standard_normal((1, 5, 64)).astype(np.float32)
    expected = _run(model, x)
    fused = model.clone()
    assert fuse_projections(fused) == 2
    assert (_matmuls(model), _matmuls(fused)) == (5, 2)
    fused.validate_nodes_and_infer_types()
    for got, want in zip(_run(fused, x), expected, strict=True):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_projections_with_other_weights_are_left_alone():
    x = opset13.parameter([-1, 64], ov.Type.f32, name="x")
    plain = [opset13.matmul(x, opset13.constant(RNG.standard_normal((32, 64)).astype(np.float32)), False, True)
             for _ in range(2)]
    model = ov.Model([opset13.result(o) for o in plain], [x])
    assert fuse_projections(model) == 0
    assert _matmuls(model) == 2


def _by_values(d: np.ndarray, q: np.ndarray) -> bytes:
    return q.astype(np.uint8).tobytes()


def _feeds_matmul(node: ov.Node) -> bool:
    """True for a weight decompression (the embedding's feeds a Gather instead)."""
    for _ in range(5):
        node = next(iter(node.output(0).get_target_inputs())).get_node()
        if node.get_type_name() == "MatMul":
            return True
    return False


@pytest.mark.model
def test_cached_ir_holds_the_gguf_q4_1_weights(tmp_path):
    """Every Q4_1 row of the GGUF is in the cached IR (fused or not) as d*q + m, within d/32."""
    gguf = resolve_llm_path(Settings(auto_pull=True))
    OpenVINOLLM(gguf, cache_dir=tmp_path)
    (xml,) = (tmp_path / "gguf-ir").glob(f"*{GGUF_IR_FORMAT}/openvino_model.xml")
    rows = q4_1_rows(gguf, key=_by_values)
    found = set()
    for op in ov.Core().read_model(str(xml)).get_ops():
        if op.get_type_name() != "Subtract":
            continue
        values, zero = (op.input_value(i).get_node().input_value(0).get_node() for i in range(2))
        if {values.get_output_element_type(0), zero.get_output_element_type(0)} != {ov.Type.u8} \
                or not _feeds_matmul(op):
            continue
        scale = next(iter(op.output(0).get_target_inputs())).get_node().input_value(1).get_node()
        q8 = np.array(values.get_data(), dtype=np.int32)
        weights = (q8 - np.array(zero.get_data(), dtype=np.float32)) * np.array(scale.get_data(), dtype=np.float32)
        for r in range(q8.shape[0]):
            key = _by_values(None, q8[r] >> 4)  # q8 = 16 q + c, c < 16
            d, m = (a.astype(np.float32)[:, None] for a in rows[key])
            assert np.all(np.abs(weights[r] - (d * (q8[r] >> 4) + m)) <= np.abs(d) / 32 + 1e-7)
            found.add(key)
    assert found == set(rows)

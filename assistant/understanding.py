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

from assistant.intent import CORPUS, IntentClassifier, Prediction, load_corpus
from assistant.knowledge import Chunk
from assistant.multilingual import MultilingualEmbedder
from assistant.slots import SlotFiller

BANK_NEIGHBOURS = 2
_shared: dict[str, Understanding] = {}
_shared_lock = threading.Lock()


@dataclass(frozen=True)
class Passage:
    """An FAQ passage found for a question: its own e5 similarity to the question, and the score it is
    ranked by (the higher of that and the similarity of the closest labelled question it answers)."""

    chunk: Chunk
    similarity: float
    score: float


class Understanding:
    """Intent, asked field and passage search over multilingual embeddings."""

    def __init__(self, embedder: MultilingualEmbedder, classifier: IntentClassifier, chunks: Sequence[Chunk], *,
                 corpus: Path = CORPUS) -> None:
        self.embedder = embedder
        self.classifier = classifier
        self.slots = SlotFiller(embedder)  # the settings a run request gives as numbers
        self.passages = [c for c in chunks if c.kind in {"faq", "section"}]
        self._vectors = embedder.encode([c.text for c in self.passages], kind="passage") if self.passages else None
        # labelled questions of the corpus, each with the passage that answers it: a question is closer in
        # meaning to another question, in any language, than to the passage's own words
        titles = {c.title: i for i, c in reversed(list(enumerate(self.passages)))}
        self._bank = [(e.question, titles[e.passage]) for e in load_corpus(corpus)
                      if e.label == "faq" and e.passage in titles]
        self._bank_vectors: np.ndarray | None = None
        self._bank_lock = threading.Lock()

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
        query = self.embedder.encode([question], kind="query")[0]
        similarities = self._vectors @ query
        scores = similarities.copy()
        if self._bank:
            asked = self._questions() @ query
            owners = np.array([passage for _, passage in self._bank])
            for passage in np.unique(owners):
                # the mean of its two closest labelled questions: one look-alike alone does not move a passage
                closest = np.sort(asked[owners == passage])[-BANK_NEIGHBOURS:]
                scores[passage] = max(scores[passage], float(closest.mean()))
        order = np.argsort(-scores)[:k]
        return [Passage(self.passages[i], float(similarities[i]), float(scores[i])) for i in order]

    def _questions(self) -> np.ndarray:
        """The labelled questions' vectors, embedded on the first search that needs them."""
        with self._bank_lock:
            if self._bank_vectors is None:
                self._bank_vectors = self.embedder.encode([q for q, _ in self._bank], kind="query")
            return self._bank_vectors

    def rank(self, question: str, candidates: Sequence[str]) -> np.ndarray:
        """Similarity of each candidate sentence to the question (any language)."""
        query = self.embedder.encode([question], kind="query")[0]
        return self.embedder.encode(list(candidates), kind="passage") @ query

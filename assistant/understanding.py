"""Language-independent understanding: intent, asked field, FAQ passages and run settings, any language.

One multilingual-e5-small embedder serves the intent classifier (assistant/intent.py), the
search over the FAQ's passages (ranked by the passage head learned from the corpus's labelled
questions, then by the passage's own similarity), and the ranking of the sentences to quote.
English questions keep the hybrid MiniLM + BM25 retrieval for the catalog's rows and table; the
learned passage leads their FAQ answers when the labelled questions clearly prefer another.
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
    """An FAQ passage found for a question: its own e5 similarity to the question, and the score it is
    ranked by (that similarity plus the probability, learned from the labelled questions, that the question
    is answered by this passage)."""

    chunk: Chunk
    similarity: float
    score: float


class Understanding:
    """Intent, asked field and passage search over multilingual embeddings."""

    def __init__(self, embedder: MultilingualEmbedder, classifier: IntentClassifier, chunks: Sequence[Chunk]
                 ) -> None:
        self.embedder = embedder
        self.classifier = classifier
        self.slots = SlotFiller(embedder)  # the settings a run request gives as numbers
        self.passages = [c for c in chunks if c.kind in {"faq", "section"}]
        self._vectors = embedder.encode([c.text for c in self.passages], kind="passage") if self.passages else None
        self._titles = [c.title for c in self.passages]

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
        """The FAQ passages that answer the question best, in any language.

        A question is closer in meaning to other questions than to the passage's own words, so the passage
        classifier trained on the corpus's labelled questions ranks first; the passage's own similarity breaks
        near-ties and ranks the passages no labelled question points to (documents added to the knowledge)."""
        if self._vectors is None:
            return []
        query = self.embedder.encode([question], kind="query")[0]
        similarities = self._vectors @ query
        learned = self.classifier.passage_probabilities(query)
        scores = similarities + np.array([learned.get(title, 0.0) for title in self._titles])
        order = np.argsort(-scores)[:k]
        return [Passage(self.passages[i], float(similarities[i]), float(scores[i])) for i in order]

    def knows(self, chunk: Chunk) -> bool:
        """Whether labelled questions of the corpus were answered by this passage (the passage head ranks it)."""
        return chunk.title in self.classifier.passage.classes

    def rank(self, question: str, candidates: Sequence[str]) -> np.ndarray:
        """Similarity of each candidate sentence to the question (any language)."""
        query = self.embedder.encode([question], kind="query")[0]
        return self.embedder.encode(list(candidates), kind="passage") @ query

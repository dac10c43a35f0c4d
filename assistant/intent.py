"""What a message asks for, learned from a labelled corpus: a classifier over multilingual embeddings.

The corpus (`assistant/data/intents.jsonl`) holds every labelled question of the project's
question sets (English) and questions written in eight other languages. Each line has the
question, its intent (faq, catalog, aggregate, run_benchmark, benchmark_llm, system_info,
out_of_scope), its language, the set it comes from and, for catalog questions, the field asked
(input_size, task, network, url). Two logistic regressions over multilingual-e5-small query
embeddings are trained from it: one for the intent, one for the asked field, and one for the FAQ
passage that answers an FAQ question (its heading). Since the
embedding space is shared across languages, a German or Japanese question lands near its
English neighbours.

Training takes seconds; the trained weights are cached under the cache folder, keyed by the
corpus, the embedder and this recipe, and rebuilt when any of them changes (never committed).
`ovperf intents` trains and prints the held-out scores (each set left out in turn).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

CORPUS = Path(__file__).parent / "data" / "intents.jsonl"
INTENTS = ("faq", "catalog", "aggregate", "run_benchmark", "benchmark_llm", "system_info", "out_of_scope")
TOOL_INTENTS = frozenset({"run_benchmark", "benchmark_llm", "system_info"})
FIELDS = ("input_size", "task", "network", "url", "none", "not_held")
_RECIPE = 4  # bump when the features or the classifier change
_REGULARISATION = 4.0


@dataclass(frozen=True)
class Example:
    """One labelled question of the corpus."""

    question: str
    label: str
    lang: str
    set: str
    attribute: str | None = None
    passage: str | None = None  # for faq questions: the FAQ heading the answer is under


@dataclass(frozen=True)
class Prediction:
    """The intent of a message, with the classifier's probabilities."""

    label: str
    confidence: float
    probabilities: dict[str, float]
    attribute: str | None = None
    unheld: float = 0.0  # probability that it asks a catalog model for what the table does not hold

    def p(self, label: str) -> float:
        """Probability of one intent."""
        return self.probabilities.get(label, 0.0)


def load_corpus(path: Path = CORPUS) -> list[Example]:
    """The labelled questions."""
    examples = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            examples.append(Example(question=record["question"], label=record["label"], lang=record["lang"],
                                    set=record["set"], attribute=record.get("attribute"),
                                    passage=record.get("passage")))
    return examples


class _Linear:
    """A fitted multinomial logistic regression kept as plain arrays (no pickles in the cache)."""

    def __init__(self, classes: Sequence[str], weights: np.ndarray, bias: np.ndarray) -> None:
        self.classes = list(classes)
        self.weights = weights
        self.bias = bias

    @classmethod
    def fit(cls, features: np.ndarray, labels: Sequence[str]) -> _Linear:
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(C=_REGULARISATION, max_iter=3000, class_weight="balanced")
        model.fit(features, list(labels))
        return cls(model.classes_.tolist(), model.coef_.astype(np.float32), model.intercept_.astype(np.float32))

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        logits = features @ self.weights.T + self.bias
        if len(self.classes) == 2:  # sklearn keeps one row for two classes
            logits = np.concatenate([-logits, logits], axis=1) / 2
        logits = logits - logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)


class IntentClassifier:
    """Intent and asked field of a message, from the corpus (trained once, cached)."""

    def __init__(self, embedder: Any, cache_dir: Path, *, corpus: Path = CORPUS,
                 mask: Callable[[str], str] = lambda text: text) -> None:
        self.embedder = embedder
        self.mask = mask  # the question without model names, for the field: the field asked is not the model
        corpus_bytes = Path(corpus).read_bytes()
        key = hashlib.sha256(corpus_bytes + f"{embedder.export_dir.name}:{_RECIPE}".encode()).hexdigest()[:16]
        self.cache_path = Path(cache_dir) / f"intents-{key}.npz"
        if self.cache_path.is_file():
            self._load()
        else:
            examples = load_corpus(corpus)
            vectors = self.embedder.encode([e.question for e in examples], kind="query")
            # the field: of catalog questions, and of questions about a catalog model the table cannot answer
            # (its license, accuracy, training), read without the model's name
            catalog = [i for i, e in enumerate(examples) if e.label == "catalog" or e.attribute == "not_held"]
            masked = self.embedder.encode([mask(examples[i].question) for i in catalog], kind="query")
            self.intent = _Linear.fit(vectors, [e.label for e in examples])
            self.field = _Linear.fit(masked, [examples[i].attribute or "none" for i in catalog])
            faq = [i for i, e in enumerate(examples) if e.label == "faq" and e.passage]
            self.passage = _Linear.fit(vectors[faq], [examples[i].passage for i in faq])
            self._save()

    def predict(self, question: str) -> Prediction:
        """The intent of one message and, for catalog questions, the field it asks about."""
        vector = self.embedder.encode([question], kind="query")
        probabilities = self.intent.probabilities(vector)[0]
        best = int(np.argmax(probabilities))
        field_probs = self.field.probabilities(self.embedder.encode([self.mask(question)], kind="query"))[0]
        field = self.field.classes[int(np.argmax(field_probs))]
        unheld = dict(zip(self.field.classes, field_probs, strict=True)).get("not_held", 0.0)
        return Prediction(label=self.intent.classes[best], confidence=float(probabilities[best]),
                          probabilities={c: float(p) for c, p in zip(self.intent.classes, probabilities, strict=True)},
                          attribute=None if field in {"none", "not_held"} else field, unheld=float(unheld))

    def passage_probabilities(self, vector: np.ndarray) -> dict[str, float]:
        """For a query vector of an FAQ question: the probability of each FAQ heading that labelled questions
        were answered under."""
        probabilities = self.passage.probabilities(vector.reshape(1, -1))[0]
        return {c: float(p) for c, p in zip(self.passage.classes, probabilities, strict=True)}

    def _save(self) -> None:
        self.cache_path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".intents-", suffix=".npz", dir=self.cache_path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                np.savez(handle, intent_w=self.intent.weights, intent_b=self.intent.bias,
                         intent_c=np.array(self.intent.classes), field_w=self.field.weights,
                         field_b=self.field.bias, field_c=np.array(self.field.classes),
                         passage_w=self.passage.weights, passage_b=self.passage.bias,
                         passage_c=np.array(self.passage.classes))
            os.replace(tmp, self.cache_path)
        except OSError:
            Path(tmp).unlink(missing_ok=True)  # a read-only cache: the model stays in memory only

    def _load(self) -> None:
        with np.load(self.cache_path) as data:
            self.intent = _Linear(data["intent_c"].tolist(), data["intent_w"], data["intent_b"])
            self.field = _Linear(data["field_c"].tolist(), data["field_w"], data["field_b"])
            self.passage = _Linear(data["passage_c"].tolist(), data["passage_w"], data["passage_b"])


def held_out_scores(examples: Sequence[Example], vectors: np.ndarray) -> dict[str, Any]:
    """Accuracy with each question set left out of training in turn (a new set's style is unseen)."""
    per_set: dict[str, float] = {}
    right = Counter()
    total = Counter()
    passage_right = passage_total = 0
    sets = sorted({e.set for e in examples})
    for held in sets:
        train = [i for i, e in enumerate(examples) if e.set != held]
        test = [i for i, e in enumerate(examples) if e.set == held]
        model = _Linear.fit(vectors[train], [examples[i].label for i in train])
        predicted = np.argmax(model.probabilities(vectors[test]), axis=1)
        hits = [model.classes[p] == examples[i].label for p, i in zip(predicted, test, strict=True)]
        per_set[held] = sum(hits) / len(hits)
        for i, hit in zip(test, hits, strict=True):
            right[examples[i].lang] += hit
            total[examples[i].lang] += 1
        # the passage head: which FAQ heading answers the set's FAQ questions
        answered = [i for i in train if examples[i].label == "faq" and examples[i].passage]
        asked = [i for i in test if examples[i].label == "faq" and examples[i].passage]
        if asked and answered:
            heads = _Linear.fit(vectors[answered], [examples[i].passage for i in answered])
            chosen = np.argmax(heads.probabilities(vectors[asked]), axis=1)
            passage_right += sum(heads.classes[c] == examples[i].passage for c, i in zip(chosen, asked, strict=True))
            passage_total += len(asked)
    return {"per_set": per_set, "per_language": {lang: right[lang] / total[lang] for lang in sorted(total)},
            "overall": sum(right.values()) / sum(total.values()), "examples": len(examples),
            "passage": passage_right / passage_total if passage_total else None, "passage_questions": passage_total}

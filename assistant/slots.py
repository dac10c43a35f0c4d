"""Which setting a number in a run request stands for, in any language: learned from examples.

"Corre el benchmark con 5 iteraciones", "プロンプトは1024トークン、生成は256トークン": each number's
clause, the number replaced by "#", is embedded with multilingual-e5-small and takes the setting of
the closest labelled clause in assistant/data/slots.jsonl when it is close enough. More examples
there teach it more ways to say a setting; no pattern is written per language.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

SLOT_CORPUS = Path(__file__).resolve().parent / "data" / "slots.jsonl"

# a number on its own: not part of a name (resnet-50, Llama-3-8b, v1.5), a size (224x224) or a version
_NUMBER = re.compile(r"(?<![A-Za-z0-9_.\-xX×])(\d{1,7})(?![0-9]|\.\d|\s*[xX×]\s*\d|[-_][A-Za-z0-9])")
_CLAUSE_BREAK = re.compile(r"[,;:!?。、，；：！？\n]|\s(?:and|und|et|y|e|и)\s")
WINDOW_CHARS = 28  # characters of the clause kept on each side of the number
MIN_SIMILARITY = 0.86  # below this the clause is like no labelled one: the number is left alone
MIN_MARGIN = 0.01  # over the best clause of another setting


@dataclass(frozen=True)
class Slot:
    """A number of the message read as a setting."""

    name: str
    value: int
    similarity: float


class SlotFiller:
    """Reads the settings a message gives as numbers (tokens, iterations, seconds), in any language."""

    def __init__(self, embedder: Any, *, corpus: Path = SLOT_CORPUS) -> None:
        self.embedder = embedder
        records = [json.loads(line) for line in corpus.read_text(encoding="utf-8").splitlines() if line.strip()]
        self.names = [r["slot"] for r in records]
        self._contexts = [r["context"] for r in records]
        self._vectors: np.ndarray | None = None
        self._lock = threading.Lock()

    def slots(self, message: str, wanted: set[str]) -> dict[str, int]:
        """The settings among `wanted` that the message's numbers give (each number and setting once)."""
        found = self._candidates(message, wanted)
        chosen: dict[str, int] = {}
        used: set[int] = set()
        for slot_index, slot in sorted(found, key=lambda item: -item[1].similarity):
            if slot.name not in chosen and slot_index not in used:
                chosen[slot.name] = slot.value
                used.add(slot_index)
        return chosen

    def _candidates(self, message: str, wanted: set[str]) -> list[tuple[int, Slot]]:
        numbers = list(_NUMBER.finditer(message))
        if not numbers or not wanted:
            return []
        windows = [_window(message, match) for match in numbers]
        vectors = self.embedder.encode(windows, kind="query")
        similarities = vectors @ self._prototypes().T
        names = np.array(self.names)
        found = []
        for index, (match, row) in enumerate(zip(numbers, similarities, strict=True)):
            best = {name: float(row[names == name].max()) for name in set(self.names)}
            name = max(best, key=best.__getitem__)
            runner_up = max((v for k, v in best.items() if k != name), default=0.0)
            if name in wanted and best[name] >= MIN_SIMILARITY and best[name] - runner_up >= MIN_MARGIN:
                found.append((index, Slot(name, int(match.group(1)), best[name])))
        return found

    def _prototypes(self) -> np.ndarray:
        with self._lock:
            if self._vectors is None:
                self._vectors = self.embedder.encode(self._contexts, kind="query")
            return self._vectors


def _window(message: str, match: re.Match[str]) -> str:
    """The number's clause, cut to a few words around it, with the number as '#'."""
    start = max((m.end() for m in _CLAUSE_BREAK.finditer(message, 0, match.start())), default=0)
    end = next((m.start() for m in _CLAUSE_BREAK.finditer(message, match.end())), len(message))
    start, end = max(start, match.start() - WINDOW_CHARS), min(end, match.end() + WINDOW_CHARS)
    return f"{message[start:match.start()]}#{message[match.end():end]}".strip()

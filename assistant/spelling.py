"""Fix misspelled words in a question before retrieval ("the modles used" → "the models used").

A word is replaced only by a word of the knowledge itself, one edit away (a transposition counts as
one edit; two for words of 8+ letters), and only when it is not a known word: the knowledge's words or
the embedder's WordPiece vocabulary (about 20,000 English words shipped with the model, so nothing is
fetched), also after a plural or verb ending is stripped ("pointers", "browsed"). So a real word the
FAQ never uses ("lasagna", "quantize") stays as written. Words with digits, short words and words with
inner capitals (names, acronyms) are left alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from rapidfuzz import process
from rapidfuzz.distance import OSA

_WORD = re.compile(r"[A-Za-z]+(?:'[a-z]+)?")
MIN_LENGTH = 5  # shorter words have too many neighbours one edit away


def vocabulary_words(vocab_file: Path) -> set[str]:
    """The whole words of a WordPiece vocab.txt (no ##pieces, no [special] tokens); empty if it is missing."""
    try:
        lines = vocab_file.read_text(encoding="utf-8").splitlines()
    except OSError:
        return set()
    return {line for line in lines if line.isalpha() and line.isascii() and len(line) > 1}


_ENDINGS = ("s", "es", "ed", "d", "ing", "er", "ers", "ly", "ize", "izes", "ized", "ise", "ised")


class SpellFixer:
    """Replace a word nobody knows by the closest word of the knowledge."""

    def __init__(self, knowledge_words: Iterable[str], known: Iterable[str] = ()) -> None:
        self.knowledge_words = sorted({w.lower() for w in knowledge_words if w.isalpha()})
        self._known = set(self.knowledge_words) | {w.lower() for w in known}

    def fix(self, text: str) -> str:
        """`text` with each misspelled word replaced (its capitalisation kept)."""
        return _WORD.sub(lambda m: self._fixed(m.group(0)), text)

    def is_known(self, word: str) -> bool:
        """A word of the knowledge or the vocabulary, as written or without a plural/verb ending."""
        lower = word.lower()
        return lower in self._known or any(
            lower.endswith(end) and lower[: -len(end)] in self._known for end in _ENDINGS)

    def _fixed(self, word: str) -> str:
        if len(word) < MIN_LENGTH or "'" in word or word[1:] != word[1:].lower() or self.is_known(word):
            return word
        limit = 1 if len(word) < 8 else 2
        found = process.extractOne(word.lower(), self.knowledge_words, scorer=OSA.distance, score_cutoff=limit)
        if found is None:
            return word
        return found[0].capitalize() if word[0].isupper() else found[0]


__all__ = ["MIN_LENGTH", "SpellFixer", "vocabulary_words"]

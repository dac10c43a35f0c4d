"""Checks a model's free sentence must pass before it is shown next to the quote it summarises.

A small LLM loops ("The results were produced ... The results were produced ..."), stops
mid-sentence, adds a "not" its source never says, or keeps the words and drops the fact
("published on [1]"). Each check is cheap and catches one of these; a sentence is shown only
when it passes all of them and the grounding check (assistant/grounding.py).
"""

from __future__ import annotations

import re
from collections import Counter

_CITATION = re.compile(r"\s*\[\d+\]")
_NEGATION = re.compile(r"\b(?:not|no|never|none|nothing|neither|nor|without|cannot)\b|n['’]t\b", re.I)
# tokens that carry a fact: numbers, versions, identifiers (benchmark_app, major.minor, 608x608, INT8)
_FACT_TOKEN = re.compile(r"\b\w*\d\w*(?:[.x]\w+)*\b|\b\w+(?:[_.]\w+)+\b|\b[A-Z]{2,}\w*\b")
_END = re.compile(r"[.!?。！？][\"')\]」』”）]*$")


def repeated_phrase(text: str, *, words: int = 3, times: int = 2) -> str | None:
    """A phrase of `words` words that occurs at least `times` times, if any."""
    tokens = re.findall(r"\w+", _CITATION.sub(" ", text).lower())
    grams = Counter(tuple(tokens[i:i + words]) for i in range(len(tokens) - words + 1))
    phrase, count = max(grams.items(), key=lambda item: item[1], default=((), 0))
    return " ".join(phrase) if count >= times else None


class Repeating(Exception):
    """Raised by `RepetitionWatch` to stop a generation whose sentence already repeats itself."""


class RepetitionWatch:
    """A streaming callback that stops the generation once its text repeats a phrase.

    Such a sentence fails `problems` whatever follows, so every later token would be spent on text that is
    never shown; a looping small model otherwise runs to its token limit and holds its place in the batch."""

    def __init__(self) -> None:
        self.text = ""

    def __call__(self, piece: str) -> None:
        self.text += piece
        complete = re.sub(r"\w+$", "", self.text)  # the last word may still grow ("in" -> "inference")
        if phrase := repeated_phrase(complete):
            raise Repeating(phrase)


def is_cut_off(text: str) -> bool:
    """The text stops mid-sentence (no closing punctuation once citations are set aside)."""
    return not _END.search(_CITATION.sub("", text).strip())


def adds_negation(sentence: str, source: str) -> bool:
    """The sentence negates where its source does not."""
    return bool(_NEGATION.search(sentence)) and not _NEGATION.search(source)


def drops_facts(sentence: str, quote: str) -> bool:
    """The quote states facts (numbers, names of tools, versions) and the sentence keeps none of them."""
    facts = {t.lower() for t in _FACT_TOKEN.findall(quote)}
    kept = {t.lower() for t in _FACT_TOKEN.findall(sentence)}
    return bool(facts) and not facts & kept


def problems(sentence: str, *, source: str, quote: str) -> list[str]:
    """Why the sentence must not be shown (empty when it passes every check)."""
    found = []
    if repeated_phrase(sentence):
        found.append("repeats itself")
    if is_cut_off(sentence):
        found.append("stops mid-sentence")
    if adds_negation(sentence, source):
        found.append("negates what the source does not")
    if drops_facts(sentence, quote):
        found.append("drops the quote's facts")
    return found

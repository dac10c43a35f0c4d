"""Grounded generation helpers: the prompt, the support check, sentence splitting.

The default LLM is tiny (135M parameters) and invents freely when asked to write. So
it is asked for one sentence taken from the top source (with a worked example), and
its sentence is shown only when every number and nearly every content word in it is
supported by the sources. The answer always ends with the most relevant sentences of
the top source, quoted verbatim and cited, so it carries the facts of what it cites.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from assistant.answer import Source

SYSTEM_PROMPT = "Answer with one sentence copied from the text, then [1]."
# One worked example: tiny models follow a demonstration far better than an instruction.
_EXAMPLE = (
    {"role": "user", "content": "Text: The cache is stored in the user's home folder. It is cleared when the "
                                "application is updated.\nQuestion: Where is the cache stored?"},
    {"role": "assistant", "content": "The cache is stored in the user's home folder [1]."},
)

_STOPWORDS = frozenset({
    "a", "an", "the", "and", "or", "but", "if", "then", "of", "to", "in", "on", "for", "with", "by", "from",
    "at", "as", "is", "are", "was", "were", "be", "been", "being", "it", "its", "this", "that", "these",
    "those", "there", "here", "what", "which", "who", "whom", "how", "why", "when", "where", "do", "does",
    "did", "can", "could", "should", "would", "will", "may", "might", "must", "i", "you", "we", "they", "he",
    "she", "my", "your", "our", "their", "me", "us", "them", "not", "no", "yes", "so", "than", "too", "very",
    "also", "about", "into", "over", "under", "more", "most", "some", "any", "all", "each", "other", "such",
    "only", "own", "same", "just", "much", "many", "get", "got",
})


def build_messages(question: str, source: Source) -> list[dict[str, str]]:
    """Chat messages asking for one sentence taken from the source (the source and question are data)."""
    return [{"role": "system", "content": SYSTEM_PROMPT}, *_EXAMPLE,
            {"role": "user", "content": f"Text: {source_body(source)}\nQuestion: {question}"}]


def source_body(source: Source) -> str:
    """Source text without its leading title line (the title is printed separately)."""
    text = source.text
    if text.startswith(source.title):
        text = text[len(source.title):].lstrip()
    return " ".join(text.split())


def sentences(text: str) -> list[str]:
    """Split text into sentences: paragraphs first, then sentence ends ('e.g.' and versions kept whole)."""
    result: list[str] = []
    for paragraph in text.split("\n"):
        flat = " ".join(paragraph.split())
        for part in re.split(r"(?<=[.!?])\s+(?=[A-Z(\"'])", flat):
            if result and re.search(r"\b(?:e\.g|i\.e|etc|vs|aka)\.$", result[-1], re.I):
                result[-1] += " " + part
            elif part:
                result.append(part)
    return result


def content_words(text: str) -> set[str]:
    """Lowercase words that carry meaning (no stopwords, no citation markers)."""
    words = re.findall(r"[a-z0-9][a-z0-9_.\-]*[a-z0-9]|[a-z0-9]", text.lower())
    return {w for w in words if w not in _STOPWORDS and not w.isdigit()}


def _norm(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.endswith("s") else word


def grounding_score(answer: str, sources: Sequence[Source], question: str = "") -> float:
    """Share of the answer's content words that appear in the sources or the question."""
    words = {_norm(w) for w in content_words(re.sub(r"\[\d+\]", " ", answer))}
    if not words:
        return 0.0
    support = {_norm(w) for w in content_words(" ".join(s.text for s in sources) + " " + question)}
    return len(words & support) / len(words)


def is_supported(answer: str, sources: Sequence[Source], question: str = "", *,
                 tolerance: float = 0.1) -> bool:
    """Every number and (nearly) every content word of the answer is in the sources or the question."""
    support_text = " ".join(s.text for s in sources) + " " + question
    numbers = set(re.findall(r"\d+(?:\.\d+)?", re.sub(r"\[\d+\]", " ", answer)))
    if not numbers <= set(re.findall(r"\d+(?:\.\d+)?", support_text)):
        return False
    words = {_norm(w) for w in content_words(re.sub(r"\[\d+\]", " ", answer))}
    if len(words) < 3:
        return False
    support = {_norm(w) for w in content_words(support_text)}
    return len(words - support) <= tolerance * len(words)


def ensure_citation(text: str, n_sources: int) -> str:
    """Append [1] when the model cited nothing; drop citations of sources that do not exist."""
    text = re.sub(r"\[(\d+)\]", lambda m: m.group(0) if 1 <= int(m.group(1)) <= n_sources else "", text)
    text = text.strip()
    if n_sources and not re.search(r"\[\d+\]", text):
        text = f"{text} [1]" if text else ""
    return text

"""Is a question inside what the knowledge covers? Dense similarity plus lexical support.

Dense similarity alone confuses topic with vocabulary ("the stock price of Intel" is close
to "Intel partners sell hardware"); lexical support alone misses paraphrases. A question
is in scope when the retrieved chunks share its meaningful words *and* are semantically
close, or when they are very close semantically. Words that appear in a large share of
the corpus (brand names like Intel, OpenVINO) carry no evidence and are ignored.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

from assistant.grounding import content_words

BACKGROUND_SHARE = 0.3  # a word in at least this share of chunks is background
# Topics the product never answers whatever the retrieval finds (the FAQ mentions buying
# hardware, which is close to prices in embedding space): prices, costs, stock quotes.
NEVER_IN_SCOPE = re.compile(r"\b(?:prices?|pricing|costs?|how much (?:does|do|is|are) .{0,40}\b(?:cost|charge)"
                            r"|stock|share price|dollars?|usd|eur)\b", re.I)


def _stem(word: str) -> str:
    return word[:5]


class RelevanceGate:
    """Decides in/out of scope from the retrieved chunks of a question."""

    def __init__(self, corpus: Iterable[str], *, strong_similarity: float = 0.55) -> None:
        texts = list(corpus)
        counts = Counter(stem for text in texts for stem in {_stem(w) for w in content_words(text)})
        limit = max(2, BACKGROUND_SHARE * len(texts))
        self.vocabulary = set(counts)
        self.background = {stem for stem, count in counts.items() if count >= limit}
        self.strong_similarity = strong_similarity

    def lexical_support(self, question: str, texts: Sequence[str]) -> float:
        """Share of the question's evidence-bearing words found in the texts (0 when it has none)."""
        words = {_stem(w) for w in content_words(question)} - self.background
        if not words:
            return 0.0
        found = {_stem(w) for text in texts for w in content_words(text)}
        return len(words & found) / len(words)

    def in_scope(self, question: str, texts: Sequence[str], similarity: float) -> bool:
        """True when the retrieved texts answer something the question asks about."""
        if NEVER_IN_SCOPE.search(question):
            return False
        if similarity >= self.strong_similarity:
            return True
        support = self.lexical_support(question, texts)
        return (support >= 0.5 and similarity >= 0.05) or (support >= 0.25 and similarity >= 0.4)

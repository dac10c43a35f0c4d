"""The FAQ's words for what users say in other words, added to the keyword (BM25) side of a search.

"How were the models picked?" shares no keyword with "The models ... were chosen based on general
adoption", and "Who sells the machines?" none with "Where can I purchase the specific hardware?". The
dense side of the search often bridges such gaps, but where two passages are close it and the keywords
disagree. Each group maps user words to the word the FAQ uses; only keywords gain the FAQ's word, the
question itself is not changed.
"""

from __future__ import annotations

import re

_GROUPS: dict[str, tuple[str, ...]] = {
    "chosen": ("choose", "chose", "choosing", "decide", "decided", "decision", "pick", "picked", "picking",
               "select", "selected", "basis", "criteria", "criterion", "lineup"),
    "published": ("download", "downloadable", "downloading", "hosted", "hosting", "obtain", "publish", "publishes",
                  "stored", "reside", "resides", "live", "lives"),
    "tool": ("utility", "utilities", "program", "software", "app", "application", "tooling"),
    "instruction": ("walkthrough", "tutorial", "tutorials", "instructions", "step-by-step", "howto"),
    "purchase": ("buy", "buying", "bought", "sell", "sells", "selling", "order", "vendor", "vendors", "shop"),
    "hardware": ("machine", "machines", "server", "servers", "boxes"),
    "updated": ("refresh", "refreshed", "cadence", "frequency", "often", "republished"),
    "added": ("expand", "expanded", "expanding", "grow", "grows", "growing", "extend", "extended", "bigger"),
    "list": ("roster", "selection"),
    "latency": ("delay", "delays", "lag", "responsiveness"),
    "image": ("picture", "pictures", "photo", "photos", "frame"),
    "size": ("resolution", "dimensions", "dimension"),
    "optimize": ("tuning", "tune", "tweak", "tweaking", "speed-up", "accelerate", "quicker"),
    "results": ("figures", "scores"),
    "website": ("site", "portal", "webpage", "page"),
}
_FAQ_WORD = {word: faq_word for faq_word, words in _GROUPS.items() for word in words}


def faq_words(text: str) -> str:
    """The FAQ's words for the user's words in `text` (space-separated, each once), or ""."""
    found = dict.fromkeys(_FAQ_WORD[w] for w in re.findall(r"[a-z]+", text.lower()) if w in _FAQ_WORD)
    return " ".join(found)


__all__ = ["faq_words"]

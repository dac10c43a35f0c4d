"""Where a passage comes from, and what an added document may not say.

The FAQ (`performance-benchmarks-faq.rst`) is the authority: its table is the workload catalog and its
answers outrank those of other documents on the same question. Any other knowledge file is *added*: its
text is indexed and cited with its file name, but its tables become catalog rows only when the file is
declared a catalog by its name (`NAME.catalog.md` / `NAME.catalog.rst`), and its sentences that address
the assistant (instructions to it, requests for keys, passwords or other secrets) are left out at index
time, so they can never be quoted as an answer. Links other than http(s) are dropped everywhere.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from assistant.knowledge import Chunk

FAQ_FILES = frozenset({"performance-benchmarks-faq.rst"})
"""File names of the FAQ itself (the project's own knowledge)."""
CATALOG_SUFFIXES = (".catalog.md", ".catalog.rst")
"""A file whose name ends so is declared a catalog: its workload tables add catalog rows."""
ORIGINS = ("faq", "catalog", "added")
"""faq: the FAQ; catalog: a file declared a catalog; added: any other document."""

_ADDRESSING = re.compile(
    r"\b(?:ignore|disregard|forget|override|bypass)\b[^.!?\n]{0,40}\b(?:instructions?|prompts?|rules|"
    r"guidelines|directions|context|above|previous|prior|earlier)\b"
    r"|\b(?:system|developer|hidden|original)\s+(?:prompt|message|instructions?)\b"
    r"|\bnew\s+instructions?\b|\bjailbreak|\bdeveloper\s+mode\b|\bprompt\s+injection\b"
    r"|\byou\s+are\s+now\b|\bfrom\s+now\s+on\b|\bact\s+as\b|\bpretend\s+(?:to\s+be|you)\b"
    r"|\b(?:as\s+an?|dear|attention|note\s+to\s+the)\s+(?:ai|assistant|chatbot|language\s+model|llm|bot)\b"
    r"|\b(?:the\s+)?(?:ai|assistant|chatbot|language\s+model|bot)\s*(?:,|:)?\s+(?:must|should|shall|will|"
    r"has\s+to|needs\s+to|is\s+to)\b"
    r"|\b(?:tell|instruct|ask|advise)\s+(?:the\s+)?(?:user|users|customer|visitor|reader)s?\s+to\b"
    r"|\b(?:respond|reply|answer)\s+(?:only\s+)?(?:with|by\s+saying)\b|\balways\s+(?:say|answer|reply|respond)\b",
    re.IGNORECASE)
_SECRETS = re.compile(
    r"\bapi[\s_-]?keys?\b|\bOVPERF_[A-Z_]+|\bpasswords?\b|\bpassphrases?\b|\bsecrets?\b|\bcredentials?\b"
    r"|\b(?:access|auth|bearer|session|refresh)[\s_-]?tokens?\b|\bprivate[\s_-]?keys?\b|\bauthorization\s*:"
    r"|\bssh[\s_-]?keys?\b|\b\.env\b|\benvironment\s+variables?\b",
    re.IGNORECASE)
_LINK_SYNTAX = re.compile(r"\[([^\]]*)\]\(\s*<?([^)\s>]*)>?[^)]*\)")
_UNSAFE_URI = re.compile(r"\b(?:javascript|vbscript|data|file|blob)\s*:[^\s|)\]]*", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])")


def document_origin(path: Path) -> str:
    """faq, catalog (declared by the file name) or added."""
    name = path.name.lower()
    if name in FAQ_FILES:
        return "faq"
    return "catalog" if name.endswith(CATALOG_SUFFIXES) else "added"


def speaker(chunk: Chunk) -> str:
    """Who a quoted passage is from: "The FAQ", or the added document by its file name."""
    return "The FAQ" if chunk.origin == "faq" else f"The added document {chunk.source} (not the FAQ)"


def safe_url(url: Any) -> str | None:
    """The link if it is an http(s) web address, else None (javascript:, data:, file: ... are dropped)."""
    if not isinstance(url, str):
        return None
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    return url if parts.scheme.lower() in {"http", "https"} and parts.netloc else None


def without_unsafe_links(text: str) -> str:
    """Link syntax the parser left as text (`[name](javascript:...)`) becomes its label when the target is
    not http(s); bare javascript:/data:/file: addresses are removed."""
    text = _LINK_SYNTAX.sub(lambda m: m.group(0) if safe_url(m.group(2)) else m.group(1), text)
    return _UNSAFE_URI.sub("", text)


def addresses_assistant(text: str) -> bool:
    """True for text that speaks to the assistant or asks for secrets rather than informing the reader."""
    return bool(_ADDRESSING.search(text) or _SECRETS.search(text))


def without_addressing(text: str) -> str:
    """The text with every sentence (of every line) that addresses the assistant left out."""
    lines = []
    for line in text.splitlines():
        kept = [s for s in _SENTENCE_END.split(line) if not addresses_assistant(s)]
        if kept and " ".join(kept).strip():
            lines.append(" ".join(kept))
    return "\n".join(lines)


def vetted(chunks: Iterable[Chunk], origin: str) -> tuple[list[Chunk], int]:
    """The chunks of a document of this origin, marked with it; for other documents than the FAQ, the
    passages that address the assistant are cut out (a passage left empty, or a table row or a title that
    addresses it, is dropped). Returns the chunks and how many passages were cut or dropped."""
    kept, flagged = [], 0
    for chunk in chunks:
        meta = dict(chunk.meta)
        chunk = dataclasses.replace(chunk, title=without_unsafe_links(chunk.title),
                                    text=without_unsafe_links(chunk.text))
        if origin != "faq":
            if chunk.kind in {"row", "table"}:
                text = chunk.text if chunk.kind == "row" else _table_without_addressing(chunk.text)
                if chunk.kind == "row" and addresses_assistant(text):
                    flagged += 1
                    continue
            else:
                if addresses_assistant(chunk.title):
                    flagged += 1
                    continue
                text = without_addressing(chunk.text)
            flagged += text != chunk.text
            if not text.strip() or text.strip() == chunk.title.strip():
                continue
            chunk = dataclasses.replace(chunk, text=text)
        if "links" in meta:
            meta["links"] = {k: v for k, v in meta["links"].items() if safe_url(v)}
        if "url" in meta:
            meta["url"] = safe_url(meta["url"])
        kept.append(dataclasses.replace(chunk, origin=origin, meta=meta))
    return kept, flagged


def _table_without_addressing(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not addresses_assistant(line))

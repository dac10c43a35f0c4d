"""The workload catalog: typed records parsed from the FAQ's workload table.

Lookups accept the names people actually type ("yolo", "Phi-3 mini", "SD 1.5",
"mask rcnn"): aliases are derived from each row (its name, its link's last path
segment, its public network) and matched token by token, weighted by how rare a
token is in the catalog, so "qwen" alone is ambiguous and "Qwen-2.5-7B" is not.
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from rapidfuzz import fuzz

from assistant.knowledge import Document, Table, load_documents, row_chunk_ids

# Generic words that never identify a model on their own.
_GENERIC = {"instruct", "chat", "it", "hf", "model", "models", "base", "v", "the", "a", "of", "and", "onnx",
            "pytorch", "tf", "public", "network", "main", "tree"}
# Domain abbreviations people use for catalog names (expanded before matching).
_ABBREVIATIONS = {"sd": "stable diffusion", "rcnn": "r cnn", "maskrcnn": "mask r cnn", "mobilenetv2": "mobilenet v2",
                  "resnet50": "resnet 50", "yolov8": "yolo v8", "llama2": "llama 2", "llama3": "llama 3",
                  "qwen2": "qwen 2", "qwen2.5": "qwen 2.5", "phi3": "phi 3", "glm4": "glm 4", "gemma2": "gemma 2"}

# YOLO sizes written out ("YOLOv8 nano") are the one-letter suffix of the name (yolov8n)
_YOLO_SIZE = re.compile(r"\b(yolo[ -]?v?\d+)[ -]?(nano|small|medium|large|xlarge|extra[ -]large)\b", re.I)
_SIZE_LETTER = {"nano": "n", "small": "s", "medium": "m", "large": "l", "xlarge": "x"}


# a letter right after a version ends a name's word: a size of the family ("yolov8s" is not yolov8n)
_SIZE_SUFFIX = re.compile(r"(?<=[a-z]\d)([ac-jln-z])(?![a-z0-9])")


def written_sizes(text: str) -> str:
    """`text` with YOLO sizes written out as the name's letter ("YOLOv8 nano" → "YOLOv8n")."""
    return _YOLO_SIZE.sub(lambda m: m.group(1) + _SIZE_LETTER.get(m.group(2).lower(), "x"), text)


# Words that tell one model of a family from another ("Gemma-2-27B", "stable diffusion xl", "phi-3-medium"):
# in a name, next to a catalog model's words, they mean another model unless that model's name has them.
_VARIANT_WORDS = frozenset({"xl", "xxl", "large", "medium", "small", "tiny", "mini", "nano", "micro", "turbo", "lite",
                            "pro", "ultra", "max", "plus", "coder", "math", "vision", "vl", "moe", "schnell", "dev",
                            "uncased", "cased", "distill"})
_SOFT_NAME_WORDS = frozenset({"instruct", "chat", "it", "hf", "base", "v"})  # part of a name, never telling
_NAME_WORD = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._+-]*[A-Za-z0-9])?")
_NAME_GAP = re.compile(r"[\s\-_.,:;/()'\"]*")
_VERSION_OR_SIZE = re.compile(r"v?\d+(?:\.\d+)*[bkm]?", re.I)
# a number followed by one of these is a quantity in the sentence ("run it 3 times"), not part of a name
_UNITS = frozenset({"s", "sec", "secs", "second", "seconds", "min", "mins", "minute", "minutes", "ms", "token",
                    "tokens", "iteration", "iterations", "run", "runs", "times", "images", "frames", "fps",
                    "streams", "requests", "threads", "cores", "batch", "gb", "mb", "x", "percent"})


@dataclass(frozen=True, kw_only=True)
class CatalogEntry:
    """One benchmarked workload, as the FAQ table lists it."""

    model: str
    network: str
    task: str
    input_size: str
    url: str | None
    source: str
    chunk_id: str

    @property
    def category(self) -> str:
        """Coarse family: llm, diffusion, vision or nlp."""
        return task_category(self.task)

    def as_dict(self) -> dict[str, str | None]:
        """JSON form."""
        return {"model": self.model, "public_network": self.network, "task": self.task,
                "input_size": self.input_size, "link": self.url, "category": self.category}

    def describe(self) -> str:
        """One sentence with every field."""
        link = f" More information: {self.url}" if self.url else ""
        return (f"{self.model} ({self.network}) is benchmarked for {self.task} "
                f"with input size {self.input_size}.{link}")


@dataclass(frozen=True)
class Match:
    """A catalog entry matched in some text, with a 0..1 score."""

    entry: CatalogEntry
    score: float  # share of the entry's name that the text covers
    weight: float = 0.0  # evidence: summed rarity of the matched name parts


def task_category(task: str) -> str:
    """Map a task description to a coarse family used for aggregate questions."""
    lowered = task.lower()
    if "diffusion" in lowered:
        return "diffusion"
    if any(word in lowered for word in ("language", "decoder", "transformer", "text-to-text")):
        return "llm"
    if any(word in lowered for word in ("detection", "segmentation", "classification", "image")):
        return "vision"
    return "nlp"


def normalize_size(size: str) -> str:
    """Canonical form of an input size: '224 x 224' → '224x224', '4096' → '4k', '128 K' → '128k'."""
    text = size.lower().replace("×", "x").replace(" ", "")
    if re.fullmatch(r"\d+k", text):
        return text
    if re.fullmatch(r"\d+", text) and int(text) >= 1024 and int(text) % 1024 == 0:
        return f"{int(text) // 1024}k"
    return text


def tokens(text: str) -> list[str]:
    """Lowercase word tokens with letter/digit boundaries split ('Phi3-4k' → phi, 3, 4k)."""
    lowered = written_sizes(text).lower().replace("_", " ")
    for short, long in _ABBREVIATIONS.items():
        lowered = re.sub(rf"(?<![a-z0-9.]){re.escape(short)}(?![a-z0-9])", long, lowered)
    out: list[str] = []
    for word in re.findall(r"[a-z0-9][a-z0-9.]*", lowered):
        # keep size-like tokens (7b, 4k, 1.5b) whole; split other letter/digit runs
        for part in re.findall(r"\d+(?:\.\d+)?[bkm](?![a-z])|[a-z]+|\d+(?:\.\d+)?", word):
            out.extend(part.split(".") if re.fullmatch(r"\d+\.\d+", part) else [part])
    return out


class Catalog:
    """Typed, queryable list of the catalog's workloads."""

    def __init__(self, entries: Iterable[CatalogEntry]) -> None:
        self.entries: tuple[CatalogEntry, ...] = tuple(entries)
        network_counts = Counter(entry.network for entry in self.entries)
        shared = {network for network, count in network_counts.items() if count > 1}
        self._aliases = {entry.model: _aliases(entry, shared) for entry in self.entries}
        # a number the table gives as an input size ("FLUX.1-schnell 77, like Stable Diffusion?") is a value
        # said about the model, not a version of its name
        self._size_values = {normalize_size(entry.input_size) for entry in self.entries}
        counts = Counter(tok for aliases in self._aliases.values() for tok in set().union(*aliases))
        n = max(len(self.entries), 1)
        self._idf = {tok: math.log(1 + n / c) for tok, c in counts.items()}

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self):
        return iter(self.entries)

    def names(self) -> list[str]:
        """Canonical model names in table order."""
        return [entry.model for entry in self.entries]

    # -- lookup ---------------------------------------------------------------------------------

    def match(self, text: str, *, min_score: float = 0.2) -> list[Match]:
        """Entries mentioned in `text`, best first (score 0..1; an exact name scores 1.0)."""
        squashed = _squash(text)
        query_tokens = tokens(text)
        ranked: list[tuple[float, float, CatalogEntry]] = []
        for entry in self.entries:
            name = _squash(entry.model)
            if name and name in squashed:
                ranked.append((1.0, 100.0 + len(name), entry))
                continue
            coverage, weight = max(self._alias_score(alias, query_tokens) for alias in self._aliases[entry.model])
            if weight and (coverage >= min_score or weight >= _RARE_TOKEN_WEIGHT):
                ranked.append((coverage, weight, entry))
        exact = [r for r in ranked if r[1] >= 100]
        if exact:  # a name written out hides fuzzy hits, and names it is part of ("Qwen-2-7B" in a longer one)
            exact.sort(key=lambda r: -r[1])
            kept = [r for r in exact if not any(
                _squash(r[2].model) in _squash(o[2].model) and o is not r for o in exact)]
            # ... unless it is part of a longer name written less exactly ("Mask R-CNN ResNet-50 atrous")
            longer = [self._longer_name(text, query_tokens, r[2]) for r in kept]
            if any(longer):
                return [Match(entry, 1.0, 100.0) for entry in dict.fromkeys(e for e in longer if e)]
            return [Match(entry, 1.0, weight) for _, weight, entry in kept]
        ranked.sort(key=lambda r: (-round(r[1], 6), -r[0]))
        return [Match(entry, round(coverage, 3), weight) for coverage, weight, entry in ranked]

    def _longer_name(self, text: str, query_tokens: Sequence[str], entry: CatalogEntry) -> CatalogEntry | None:
        """Another entry whose name contains `entry`'s name, most of whose name the text covers, including a
        distinctive word `entry`'s name lacks ("Mask R-CNN ResNet-50 atrous" is not resnet-50; "Qwen-2-7B"
        written out is not Qwen-2-7B-Instruct)."""
        inner = set(tokens(entry.model))
        for other in self.entries:
            outer = set(tokens(other.model))
            if other is entry or not inner < outer:
                continue
            if not any(_counts(t) and any(token_match(t, q) for q in query_tokens) for t in outer - inner):
                continue
            coverage, _ = max(self._alias_score(alias, query_tokens) for alias in self._aliases[other.model])
            if coverage >= 0.7:
                return other
        return None

    def named_matches(self, text: str) -> list[Match]:
        """The matches of `text` that name the catalog's own model, not another of its family."""
        return [m for m in self.match(text) if self.other_model(text, m.entry) is None]

    def find(self, name: str) -> CatalogEntry | None:
        """The one entry `name` refers to, or None when nothing or several match equally, or when `name`
        names another model of the family ("resnet-101" is not resnet-50)."""
        matches = self.named_matches(name)
        if not matches:
            return None
        if len(matches) > 1 and _tied(matches[0], matches[1]):
            return None
        return matches[0].entry

    def other_model(self, text: str, entry: CatalogEntry) -> str | None:
        """The name in `text` that matched `entry` when it names another model of the family, else None.

        "Gemma-2-27B" matches Gemma-2-9B on its words, "llama 3.1 8b" matches Llama-3-8b, "resnet-101"
        matches resnet-50: a version, size or variant word inside or right after the matched words that
        the entry's names do not have means the text is about a model the catalog does not list."""
        alias_tokens = set().union(*self._aliases[entry.model])
        written = written_sizes(text)
        spans = list(_NAME_WORD.finditer(written))
        words = [m.group(0) for m in spans]
        # words of one name follow each other with nothing but spaces or punctuation between them ("and" or
        # a CJK word between two names keeps them apart: "mask_rcnn_... 和 ssd-resnet34-...")
        joined = [i > 0 and bool(_NAME_GAP.fullmatch(written[spans[i - 1].end():spans[i].start()]))
                  for i in range(len(spans))]

        hit = [any(_counts(t) and any(token_match(a, t) for a in alias_tokens) for t in tokens(word))
               for word in words]

        def extends(i: int) -> bool:
            word = words[i].lower()
            if word in _VARIANT_WORDS or word in _SOFT_NAME_WORDS:
                return True
            following = words[i + 1].lower() if i + 1 < len(words) else ""
            return (bool(_VERSION_OR_SIZE.fullmatch(word)) and following not in _UNITS
                    and normalize_size(word) not in self._size_values)

        runs: list[list[int]] = []
        for i in range(len(words)):
            if hit[i] or (runs and runs[-1][-1] == i - 1 and joined[i] and extends(i)):
                if runs and runs[-1][-1] == i - 1 and joined[i]:
                    runs[-1].append(i)
                else:
                    runs.append([i])
        def names_another(run: list[int]) -> bool:
            return any((_is_number(tok) or tok in _VARIANT_WORDS) and tok not in alias_tokens
                       for i in run for tok in tokens(words[i])) or any(
                suffix not in alias_tokens and _squash(words[i]) not in _squash(entry.model)
                for i in run for suffix in _SIZE_SUFFIX.findall(words[i].lower()))

        # a run must match a word of the name, not only a number ("Gaudi 2" does not name Llama-3.2)
        runs = [r for r in runs if any(hit[i] and re.search(r"[a-z]{2}", words[i].lower()) for i in r)]
        if not runs or not all(names_another(r) for r in runs):
            return None  # the entry itself is named somewhere ("Llama-3-8b vs Llama-2-7b-chat")
        run = max(runs, key=lambda r: sum(hit[i] for i in r))
        return " ".join(words[j] for j in run)

    def candidates(self, name: str, limit: int = 5) -> list[CatalogEntry]:
        """Closest entries for a name that did not resolve, for 'did you mean' messages."""
        matches = self.match(name, min_score=0.25)
        return [m.entry for m in matches[:limit]]

    def _alias_score(self, alias: frozenset[str], query: Sequence[str]) -> tuple[float, float]:
        """(coverage of the alias's weight, matched weight); 0 unless a distinctive word matches."""
        total = sum(self._idf.get(tok, 1.0) for tok in alias if _counts(tok))
        got = 0.0
        distinctive = False
        for tok in alias:
            if _counts(tok) and any(token_match(tok, q) for q in query):
                got += self._idf.get(tok, 1.0)
                distinctive |= tok.isalpha() and tok not in _GENERIC
        if not distinctive or not total:
            return 0.0, 0.0
        # numbers in the query that contradict the alias ("qwen 3" vs qwen 2) halve the score
        alias_numbers = {t for t in alias if _is_number(t)}
        named = {t for t in query if _is_number(t)}
        if alias_numbers and named and not named & alias_numbers:
            got *= 0.5
        return got / total, got

    # -- aggregation ----------------------------------------------------------------------------

    def by_task(self) -> dict[str, list[CatalogEntry]]:
        """Entries grouped by task text."""
        return _group(self.entries, lambda e: e.task)

    def by_category(self) -> dict[str, list[CatalogEntry]]:
        """Entries grouped by coarse family (llm, diffusion, vision, nlp)."""
        return _group(self.entries, lambda e: e.category)

    def by_input_size(self) -> dict[str, list[CatalogEntry]]:
        """Entries grouped by input size as written in the table."""
        return _group(self.entries, lambda e: e.input_size)

    def by_publisher(self) -> dict[str, list[CatalogEntry]]:
        """Entries grouped by public network / publisher."""
        return _group(self.entries, lambda e: e.network)

    def with_input_size(self, size: str) -> list[CatalogEntry]:
        """Entries whose input size equals `size` (224x224 == 224 x 224, 4096 == 4K)."""
        wanted = normalize_size(size)
        return [e for e in self.entries if normalize_size(e.input_size) == wanted]


def _group(entries: Iterable[CatalogEntry], key) -> dict[str, list[CatalogEntry]]:
    groups: dict[str, list[CatalogEntry]] = defaultdict(list)
    for entry in entries:
        groups[key(entry)].append(entry)
    return dict(groups)


_RARE_TOKEN_WEIGHT = 2.0  # idf of a word that names at most ~3 catalog entries


def _tied(first: Match, second: Match) -> bool:
    """Equal evidence for both and similar coverage: the text does not say which one."""
    return abs(first.weight - second.weight) < 1e-6 and first.score - second.score < 0.2


def _counts(tok: str) -> bool:
    return (len(tok) > 1 or tok.isdigit()) and tok not in _GENERIC


def _is_number(tok: str) -> bool:
    return re.fullmatch(r"\d+(\.\d+)?[bkm]?", tok) is not None


def _squash(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", written_sizes(text).lower())


@functools.lru_cache(maxsize=1 << 16)  # pure, and called for every word pair of every catalog name and question
def token_match(alias_token: str, query_token: str) -> bool:
    """A word of a catalog name and a word of a text are the same word (prefix or close spelling for
    words without digits; numbers and versions only exactly)."""
    if alias_token == query_token:
        return True
    if alias_token.isdigit() or query_token.isdigit() or re.search(r"\d", alias_token + query_token):
        return False
    if len(query_token) >= 3 and alias_token.startswith(query_token):
        return True
    return len(alias_token) >= 5 and len(query_token) >= 5 and fuzz.ratio(alias_token, query_token) >= 85


def _aliases(entry: CatalogEntry, shared_networks: set[str]) -> list[frozenset[str]]:
    names = [entry.model]
    if entry.url:
        parts = [p for p in urlparse(entry.url).path.split("/") if p and p not in {"tree", "main"}]
        if parts and not re.fullmatch(r"v?\d+(\.\d+)*", parts[-1]):
            names.append(parts[-1] if len(parts) < 2 or parts[-1] not in {"main"} else parts[-2])
    if entry.network and entry.network not in shared_networks:
        names.append(entry.network)
    aliases = []
    for name in names:
        toks = [t for t in tokens(name) if t not in {"hf"}]
        words = [t for t in toks if t.isalpha() and len(t) > 1 and t not in _GENERIC]
        if len(words) >= 2:  # initials: Stable Diffusion → sd
            toks.append("".join(w[0] for w in words[:2]))
        if toks:
            aliases.append(frozenset(toks))
    return aliases


CATALOG_ORIGINS = frozenset({"faq", "catalog"})
"""Document origins (assistant.provenance) whose workload tables are the catalog."""


def is_catalog_table(table: Table) -> bool:
    """The workload table: has Model and Input Size columns."""
    header = [h.lower() for h in table.header]
    return "model" in header and any("input" in h for h in header)


def catalog_from_documents(documents: Sequence[Document]) -> Catalog:
    """Build the catalog from the workload tables of the FAQ and of files declared catalogs (an added
    document's table is text to cite, never catalog rows)."""
    entries = []
    for doc in documents:
        if doc.origin not in CATALOG_ORIGINS:
            continue
        for index, table in enumerate(doc.tables):
            if not is_catalog_table(table):
                continue
            header = [h.lower() for h in table.header]
            col = {name: next((i for i, h in enumerate(header) if name in h), None)
                   for name in ("model", "network", "task", "input")}
            for row, row_id in zip(table.rows, row_chunk_ids(table, index), strict=True):
                def cell(key: str, row=row, col=col) -> str:
                    i = col[key]
                    return row[i].text if i is not None and i < len(row) else ""
                model = cell("model")
                if not model:
                    continue
                entries.append(CatalogEntry(
                    model=model, network=cell("network"), task=cell("task"), input_size=cell("input"),
                    url=row[col["model"]].url if col["model"] is not None else None,
                    source=table.source, chunk_id=row_id,
                ))
    return Catalog(entries)


@functools.cache
def _catalog_for(dirs: tuple[Path, ...]) -> Catalog:
    return catalog_from_documents(load_documents(dirs))


def default_catalog(dirs: Sequence[Path] | None = None) -> Catalog:
    """The catalog parsed from the knowledge folders (the project's own by default); cached."""
    if dirs is None:
        from assistant.config import Settings

        dirs = Settings().knowledge_dirs
    return _catalog_for(tuple(Path(d) for d in dirs))

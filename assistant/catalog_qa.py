"""Answer catalog questions exactly from the catalog records, never from generation.

Two shapes: a question about named workloads ("What is the input size of yolov8n?")
and an aggregate over the table ("Which models use a 128K input?", "How many LLMs?").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from assistant.catalog import Catalog, CatalogEntry, normalize_size, tokens
from assistant.phrasing import asked_sentence

ATTRIBUTES: dict[str, re.Pattern[str]] = {
    "input_size": re.compile(
        r"input[- ]?size|context(?: length| window| size)?|sequence length|seq(?:uence)? len|resolution"
        r"|image size|input shape|max(?:imum)? (?:length|tokens)|how (?:long|big|large)|\bsize\b|dimension"
        r"|tokens? of input|input tokens|how many tokens|\bres\b|\bpixels?\b|input length|max(?:imum)? input"
        r"|\binputs?\b",
        re.I),
    "task": re.compile(r"\btasks?\b|used for|benchmarked for|purpose|what (?:does|do) .+ do\b|kind of model"
                       r"|type of model|what type|categor(?:y|i[sz]ed)|classified as", re.I),
    "network": re.compile(r"public network|publisher|published by|who (?:made|makes|publishes|released|built"
                          r"|develops|developed)|vendor|author|company|organi[sz]ation|\bnetwork\b|flavou?r"
                          r"|tensorflow or (?:the )?pytorch|pytorch or (?:the )?tensorflow", re.I),
    "url": re.compile(r"\blinks?\b|\burl\b|where can i (?:find|get|download) (?:the )?(?!models\b)|homepage"
                      r"|more information|weights|\bcomes? from\b|\borigin(?:al)?\b|\bsource (?:of|for)\b"
                      r"|\brepo(?:sitory)?\b", re.I),
}
_FIELD_LABEL = {"input_size": "input size", "task": "task", "network": "public network", "url": "link"}

_ROWS = (r"(?:models?|networks?|workloads?|llms?|ones|entries|benchmarks|workload list|benchmark list|checkpoints"
         r"|variants)")
_AGGREGATE = re.compile(
    # "which vision models ...", "which of the benchmark models ...", not "which utility generated ... networks"
    r"^\s*(?:(?:and|so|ok|okay|also|then|now),?\s+)?(?:which|what)(?: of the)?\s+"
    r"(?:(?!which\b|what\b)[\w/-]+\s+){0,3}?" + _ROWS + r"\b"
    r"|^\s*(?:(?:and|so|ok|okay|also|then|now),?\s+)?(?:list|name|show|give me|tell me|count|are there|how many"
    r"|enumerate)\b(?!\s+(?:me\s+)?(?:where|why|how|when|whether|if)\b).*\b" + _ROWS + r"\b"
    # "how many deepseek distill models", "how many are there", not "how many epochs/streams/tokens per second"
    r"|\bhow many\b(?=(?:\s+[\w-]+){0,3}?\s+" + _ROWS + r"\b|\s+(?:are|is)\s+(?:there|in|listed|benchmarked)\b"
    r"|\s+(?:use|have|take|get|come)\b|\W*$)"
    r"|^\s*(?:list|name|show|count|enumerate|give me|tell me)\s+(?:all|every) (?:the )?(?:catalog |benchmark(?:ed)? )?"
    r"(?:models?|networks?|workloads?|llms?)\b"
    r"|^\s*(?:list|name|enumerate|show me)\s+(?:all|every|each)\b(?! (?:the )?(?:steps|ways|options|settings)\b)"
    # "models from meta ai in the catalog?"
    r"|^\s*(?:any |all |the )?(?:models?|networks?|llms?|workloads?)\s+(?:from|by|published by|made by|with|that"
    r"|using|linked to|linking to)\b"
    # "Anything in the list with a 32K input?", "Is there any model with 4K context?"
    r"|^\s*(?:is there |are there )?(?:anything|any(?:thing)? (?:models?|networks?|workloads?|llms?))\b"
    r"(?: in the (?:list|catalog|table|benchmarks?))?\s+(?:with|that|using|at|of|for|from|by)\b",
    re.I)
_COUNT = re.compile(r"\bhow many\b|\bnumber of\b|^\s*count\b|^\s*total\b", re.I)  # not "the highest pixel count"
_SIZE = re.compile(r"\b(\d+)\s*[kK]\b|\b(\d+)\s*[x×X]\s*(\d+)\b|\b(\d{2,6})\b")

# Words people use for the catalog's families (matched against task_category()).
_EXCLUSION = re.compile(r"\b(?:except(?: for)?|excluding|besides|apart from|aside from|other than|not counting"
                        r"|leaving out|setting|putting|ignoring)\b([^,?.;]*?)(?:\s+aside\b|(?=[,?.;])|$)", re.I)
_NEGATION = re.compile(r"\b(?:not|n't|no|without|other than|except)\b", re.I)
_CATEGORY_WORDS = {
    "llm": r"\bllms?\b|large language|language models?|text generation|chat ?bots?|generative text|decoder",
    "diffusion": r"diffusion|image generation|text[- ]to[- ]image|generative image",
    "vision": r"\bvision\b|computer vision|\bcnns?\b|image models?",
}


@dataclass(frozen=True, kw_only=True)
class CatalogAnswer:
    """An exact answer and the catalog entries it is built from."""

    text: str
    entries: tuple[CatalogEntry, ...]
    aggregate: bool
    filters: dict[str, str] = field(default_factory=dict)


def asked_attribute(question: str) -> str | None:
    """Which field the question asks about (input_size, task, network, url), if any; in a message of
    several sentences, the one asked ("...my manager wants numbers. What should we use for LLMs?")."""
    asked = asked_sentence(question)
    for name, pattern in ATTRIBUTES.items():
        if name == "task" and _ASKS_TOOL.search(asked):
            continue  # "which tool was used for the CNN numbers?" asks about the method, not a model's task
        if pattern.search(asked):
            return name
    return None


def claimed_attribute(claim: str) -> str | None:
    """The field a claim gives a value of ("... is listed as an object detection workload, correct?" → task);
    the caller leaves the model's own name out (Stable *Diffusion* is no task)."""
    if CLAIMED_SIZE.search(claim):
        return "input_size"
    if CLAIMED_TASK.search(claim):
        return "task"
    return None


CLAIMED_SIZE = re.compile(r"\b\d+\s*[kK]\b|\b\d+\s*[x×]\s*\d+\b", re.I)
CLAIMED_TASK = re.compile(r"\b(?:classification|detection|segmentation|question[- /]*answer(?:ing)?|diffusion"
                           r"|auto[- ]?regressive|decoder|text[- ]to[- ]\w+|language model)\b", re.I)


_ASKS_TOOL = re.compile(r"\b(?:which|what)\s+(?:\w+\s+)?(?:tool|utility|software|app|application|program|script"
                        r"|framework|method)s?\b", re.I)


def answer_about(entries: list[CatalogEntry], attribute: str | None) -> CatalogAnswer:
    """Answer a question about one entry, or about each of several equally likely entries."""
    if len(entries) == 1:
        entry = entries[0]
        if attribute is None:
            text = entry.describe()
        else:
            value = _value(entry, attribute)
            text = f"The {_FIELD_LABEL[attribute]} of {entry.model} in the benchmark catalog is {value}."
            if attribute != "url":
                text += f" (Task: {entry.task}; public network: {entry.network}; input size: {entry.input_size}.)"
                if entry.url:  # "which public network is it and where does the link point?"
                    text += f" More information: {entry.url}"
        return CatalogAnswer(text=text, entries=(entry,), aggregate=False)
    label = _FIELD_LABEL.get(attribute or "", "details")
    families = {e.model.split("-")[0].lower() for e in entries}
    lines = [f"The {label} of each model named:" if len(families) == len(entries) else
             f"{len(entries)} catalog models match the name you used; the {label} of each:"]
    for entry in entries:
        lines.append(f"- {entry.model}: {_value(entry, attribute) if attribute else entry.describe()}")
    return CatalogAnswer(text="\n".join(lines), entries=tuple(entries), aggregate=False)


def answer_not_held(entries: list[CatalogEntry]) -> CatalogAnswer:
    """Say that the catalog holds only its four fields for these models (a license, an accuracy, how to
    train one: the FAQ gives none of that), and give those fields, so nothing is guessed."""
    names = ", ".join(e.model for e in entries)
    lines = [f"The benchmark catalog gives only the task, public network, input size and link of {names}, and "
             "the FAQ says nothing more about it, so I cannot answer that from my sources. What the catalog lists:"]
    lines += [f"- {entry.describe()}" for entry in entries]
    return CatalogAnswer(text="\n".join(lines), entries=tuple(entries), aggregate=False)


def answer_unlisted(mention: str, similar: list[CatalogEntry], attribute: str | None, catalog: Catalog
                    ) -> CatalogAnswer:
    """Say that a model is not in the catalog (never answer with a look-alike's values), and name the
    catalog models it resembles, or all of them."""
    name = mention or "The model you asked about"
    label = _FIELD_LABEL.get(attribute or "", "figures")
    text = f"{name} is not in the benchmark catalog, so the FAQ gives no {label} for it."
    if similar:
        text += f" Similar models that are in the catalog: {', '.join(e.model for e in similar)}."
    else:
        text += f" The catalog lists {len(catalog)} models: {', '.join(catalog.names())}."
    return CatalogAnswer(text=text, entries=tuple(similar), aggregate=False)


# a name with a digit ("whisper-large-v3"), or hyphenated with a capital after a hyphen or inside a word
# ("Whisper-Large", "EfficientNet-Lite"), not a hyphenated word ("question-answering", "KV-cache")
_MODEL_LIKE = re.compile(r"\b[A-Za-z][A-Za-z0-9]*(?:[-_.][A-Za-z0-9]+)*[-_.]?[A-Za-z]*\d[A-Za-z0-9.]*"
                         r"(?:[-_][A-Za-z0-9.]+)*"
                         r"|\b[A-Za-z]+(?:[-_][A-Za-z0-9]+)*[-_][A-Z][A-Za-z0-9]*(?:[-_][A-Za-z0-9]+)*\b"
                         r"|\b[A-Za-z]*[a-z][A-Z][A-Za-z]*(?:[-_][A-Za-z0-9]+)+\b")


def model_like_name(question: str) -> str:
    """The word of a question that looks like a model name ("whisper-large-v3", "DeepSeek-V3"), or ""."""
    found = _MODEL_LIKE.search(question)
    return found.group(0).rstrip(".") if found else ""


def field_value(entry: CatalogEntry, attribute: str) -> str | None:
    """One field of a catalog row as the table gives it (None when the table has no value)."""
    return entry.url if attribute == "url" else _value(entry, attribute)


def _value(entry: CatalogEntry, attribute: str) -> str:
    if attribute == "input_size":
        return entry.input_size
    if attribute == "task":
        return entry.task
    if attribute == "network":
        return entry.network
    return entry.url or "no link is given in the table"


def is_aggregate_question(question: str, *, fragment: bool = True) -> bool:
    """Phrased as a question over many catalog rows (which/list/how many ... models), or for the one with
    the largest/smallest input ("Which vision model has the largest input resolution?")."""
    rows = re.search(r"\b" + _ROWS + r"\b", question, re.I)
    if rows and re.search(r"\b(?:which|what) (?:are|were) (?:they|these|those)\b", question, re.I):
        return True  # "The DeepSeek models, which are they all?"
    return bool(_AGGREGATE.search(question) or _CLAIM_OVER_ROWS.search(question)) or bool(
        _EXTREME_INPUT.search(question) and re.search(r"\b(?:which|what)\b", question, re.I)) or (
        fragment and _is_fragment(question)
        and bool(re.search(r"\b(?:" + _ROWS + r"|variants|versions|family)\b", question, re.I)))


# "Is X the only entry whose network is spelled 'Hugginface'?": a question over the rows, though it names one
ONLY_ONE = re.compile(r"\b(?:the only|the sole|any other)\s+(?:entry|model|network|workload|llm|one)\b", re.I)
# "does the catalog include any Google models?", "only two Meta AI models", "all object detection models":
# a claim over the rows that some words between the quantifier and the rows narrow down (not "all models")
_CLAIM_OVER_ROWS = re.compile(r"\b(?:any|all|only(?: \w+)?|exactly \w+|the only)\s+(?!the\b|of\b|these\b|those\b"
                              r"|your\b|my\b)(?:[\w-]+\s+){1,3}?" + _ROWS + r"\b|" + ONLY_ONE.pattern, re.I)


def _is_fragment(question: str) -> bool:
    """A search-box fragment ("8K input size models", "object detection models in catalog"): no question
    word, no verb of a sentence, at most eight words."""
    words = re.sub(r"\bbenchmark(?:ed)?\s+(?=catalog|list|table)", "", question, flags=re.I)
    return len(question.split()) <= 8 and not re.search(
        r"\b(?:what|which|how|who|why|where|when|is|are|was|were|does|do|did|can|could|should|would|will|i|you"
        r"|we|my|your|run|benchmark|measure|test)\b", words, re.I)


def aggregate_filters(question: str, catalog: Catalog) -> dict[str, str]:
    """Filters named in the question: input size, family/task words, publisher."""
    filters: dict[str, str] = {}
    # "Except the LLMs and the diffusion models, which ...": families ruled out, not asked for
    excluded = " ".join(m.group(1) for m in _EXCLUSION.finditer(question))
    if left_out := [c for c, pattern in _CATEGORY_WORDS.items() if re.search(pattern, excluded, re.I)]:
        filters["exclude"] = "|".join(left_out)
        question = _EXCLUSION.sub(" ", question)
    known_sizes = {normalize_size(e.input_size) for e in catalog}
    for match in _SIZE.finditer(question):
        if match.group(1):
            size = f"{match.group(1)}k"
        elif match.group(2):
            size = f"{match.group(2)}x{match.group(3)}"
        else:
            size = normalize_size(match.group(4))
        if comparison := _size_comparison(question, match):  # "larger than 224x224", "8K 以上"
            filters["input_size_compare"] = f"{comparison}{size}"
            break
        if size in known_sizes:  # "have NOT an input size of 128K": every size but that one
            negated = _NEGATION.search(question[max(0, match.start() - 30):match.start()])
            filters["input_size_not" if negated else "input_size"] = size
            break
    family_words: set[str] = set()
    before_family: set[str] = set()  # the two words just before the family word ("auto regressive LLMs")
    for category, pattern in _CATEGORY_WORDS.items():
        if found := re.search(pattern, question, re.I):
            filters["category"] = category
            family_words = set(tokens(found.group(0)))
            before_family = set(tokens(" ".join(question[:found.start()].split()[-2:])))
            break
    question_tokens = set(tokens(question))
    tasks = sorted(task for task in {e.task for e in catalog} if _names_task(task, question_tokens))
    # one task is narrower than its family ("auto regressive language models": the family word is the
    # task's own); a family word of its own wins over tasks that explain it ("vision (classification...)")
    if len(tasks) == 1 and ("category" not in filters or family_words & set(tokens(tasks[0]))
                            or _names_task(tasks[0], before_family)):  # the task qualifies the family word
        filters["task"] = tasks[0]
        filters.pop("category", None)
    elif tasks and "category" not in filters:  # several tasks explaining a family word: the family
        filters["tasks"] = "|".join(tasks)
    squashed = re.sub(r"[^a-z0-9]", "", question.lower())
    repos = sorted({r for e in catalog if (r := _link_repository(e)) and len(r) >= 5
                    and re.sub(r"[^a-z0-9]", "", r.lower()) in squashed})
    if repos:  # "which models link to open_model_zoo?"
        filters["link"] = repos[0]
    named = {_publisher_word(t) for t in question_tokens}
    if not any(e.model.lower() in question.lower() for e in catalog):
        # a publisher word per publisher named ("from Mistral AI or THUDM"): one word stands for all the ways
        # its rows spell it
        publishers = sorted({min(shared) for entry in catalog if (shared := _publisher_words(entry) & named)})
        if publishers:
            filters["network"] = "|".join(publishers)
    return filters


# a comparison said next to a size, in the languages the assistant answers in
_ABOVE = re.compile(r"\b(?:larger|bigger|greater|higher|longer|more|above|over|exceed\w*|beyond|größer|grösser|mehr"
                    r"|über|länger|höher|plus grand\w*|plus long\w*|supérieur\w*|au-delà|plus de|mayor(?:es)?"
                    r"|más grandes?|más larg[oa]s?|más de|superior(?:es)?|maggior[ei]|più grand[ei]|più lung[oh]i?"
                    r"|maior(?:es)?|mais de)\b"
                    r"|より大きい|より長い|を超え|超え|超过|超過|大于|大於|高于|长于|보다 큰|초과", re.I)
_BELOW = re.compile(r"\b(?:smaller|less|lower|shorter|fewer|below|under|kleiner|weniger|unter|kürzer|niedriger"
                    r"|plus petit\w*|plus court\w*|moins de|inférieur\w*|menor(?:es)?|más pequeñ[oa]s?|más cort[oa]s?"
                    r"|menos de|inferior(?:es)?|minor[ei]|più piccol[oi]|più cort[oi])\b"
                    r"|より小さい|より短い|未満|小于|小於|低于|短于|不到|보다 작은|미만", re.I)
_AT_LEAST = re.compile(r"\b(?:at least|or more|or larger|or above|mindestens|au moins|al menos|almeno|pelo menos)\b"
                       r"|以上|至少|이상", re.I)
_AT_MOST = re.compile(r"\b(?:at most|or less|or smaller|up to|höchstens|au plus|como máximo|al massimo|no máximo)\b"
                      r"|以下|至多|最多|이하", re.I)


def _size_comparison(question: str, match: re.Match[str]) -> str:
    """">", ">=", "<" or "<=" when the words next to a size compare with it, else "" (also for "no more and
    no less"); "side" follows when a bare number counts the pixels of an image's side."""
    near = f"{question[max(0, match.start() - 30):match.start()]} {question[match.end():match.end() + 14]}"
    if _AT_MOST.search(near):
        operator = "<="
    elif _AT_LEAST.search(near):
        operator = ">="
    elif found := _BELOW.search(near) or _ABOVE.search(near):
        if _NEGATED_COMPARISON.search(near[:found.start()]):
            return ""
        operator = "<" if found.re is _BELOW else ">"
    else:
        return ""
    side = match.group(4) and _PIXELS.search(question[match.end():match.end() + 24])
    return f"{operator}side:" if side else operator


_NEGATED_COMPARISON = re.compile(r"\b(?:no|not|nicht|keine?|pas|ni|non|nem|não)\s*$|不\s*$", re.I)
_PIXELS = re.compile(r"\b(?:pixels?|px|pixel[ns]?|píxeles|pixeles)\b|像素|ピクセル|픽셀", re.I)


def _compares(entry: CatalogEntry, comparison: str) -> bool:
    """The entry's input size is of the compared size's kind and on the asked side of it ("side:": the longer
    side of an image against a number of pixels)."""
    operator, side, size = re.match(r"([<>]=?)(side:)?(.*)", comparison).groups()
    if side:
        image = re.fullmatch(r"(\d+)x(\d+)", normalize_size(entry.input_size))
        mine, theirs = (("side", max(int(image.group(1)), int(image.group(2)))) if image else None,
                        ("side", int(size)))
    else:
        mine, theirs = _size_value(entry.input_size), _size_value(size)
    if mine is None or theirs is None or mine[0] != theirs[0]:
        return False
    return {">": mine[1] > theirs[1], ">=": mine[1] >= theirs[1], "<": mine[1] < theirs[1],
            "<=": mine[1] <= theirs[1]}[operator]


def _names_task(task: str, question_tokens: set[str]) -> bool:
    question_tokens = question_tokens | {t[:-1] for t in question_tokens if t.endswith("s")}  # "objects"
    words = {t for t in tokens(task) if len(t) > 3 and t not in {"model", "language"}}
    return bool(words) and (words <= question_tokens or (len(words) > 1 and len(words & question_tokens) >= 2))


def _link_repository(entry: CatalogEntry) -> str:
    """The repository or model folder a row's link points into (github.com/openvinotoolkit/open_model_zoo/...
    → open_model_zoo), or ""."""
    link = re.match(r"https?://(?:www\.)?(?:huggingface\.co|github\.com)/[^/]+/([^/?#]+)", entry.url or "")
    return link.group(1) if link else ""


def _publisher_words(entry: CatalogEntry) -> set[str]:
    """Words for who publishes a model: its public-network cell and the organisation in its link
    (huggingface.co/google/... → google), so "anything from Google?" finds Gemma; an organisation word
    that is part of the model's own name or task (stable-diffusion-v1-5, meta-llama) is no publisher."""
    words = {_publisher_word(t) for t in tokens(entry.network) if len(t) > 2 and t not in {"model", "onnx"}}
    link = re.match(r"https?://(?:www\.)?(?:huggingface\.co|github\.com)/([^/]+)/", entry.url or "")
    if link:
        own = set(tokens(f"{entry.model} {entry.task}"))
        words |= {t for t in tokens(link.group(1)) if len(t) > 2 and t not in own | {"openvinotoolkit"}}
    return words


_PUBLISHER_NAMES = {"huggingface": "Hugging Face (HF)", "meta": "Meta AI", "deepseek": "DeepSeek",
                    "thudm": "THUDM", "mistral": "Mistral AI"}


def _publisher_word(token: str) -> str:
    return "huggingface" if token in {"hugginface", "huggingface", "hugging", "hf"} else token


_EXTREME = re.compile(r"\b(?P<max>longest|largest|biggest|highest|(?<!at )most|max(?:imum)?)\b|\b(?P<min>shortest"
                      r"|smallest|lowest|(?<!at )least|min(?:imum)?)\b", re.I)  # "at most 8K" is a comparison

# an extreme of the input ("the largest input resolution", "the shortest context"), not "the most recent round"
_EXTREME_INPUT = re.compile("(?:" + _EXTREME.pattern + r")\W+(?:[\w-]+\W+){0,2}?"
                            r"(?:input|context|resolution|size|images?|tokens?|sequence|prompt|window|pixels?|res)\b",
                            re.I)


def _size_value(size: str) -> tuple[str, int] | None:
    """An input size as (unit, number) for comparison: tokens ("4K" = 4096) or pixels ("224x224")."""
    text = normalize_size(size)
    if found := re.fullmatch(r"(\d+)x(\d+)", text):
        return "pixels", int(found.group(1)) * int(found.group(2))
    if found := re.fullmatch(r"(\d+)(k?)", text):
        return "tokens", int(found.group(1)) * (1024 if found.group(2) else 1)
    return None


def _extreme_sizes(question: str, entries: list[CatalogEntry]) -> tuple[list[CatalogEntry], str]:
    """The entries with the largest/smallest input size when the question asks for it (and the sizes are
    comparable: all token counts or all pixel counts), with the words to say so."""
    found = _EXTREME.search(question)
    values = {e.model: _size_value(e.input_size) for e in entries}
    if not found or not entries or None in values.values():
        return entries, ""
    pick = max if found.group("max") else min
    word = "largest" if found.group("max") else "smallest"
    kinds = (("pixels", r"\b(?:pixels?|resolution|image)\b"), ("tokens", r"\b(?:tokens?|context|sequence)\b"))
    for unit, asked in kinds:
        if re.search(asked, question, re.I):  # "the biggest image resolution": compare images only
            entries = [e for e in entries if values[e.model][0] == unit] or entries
            values = {e.model: values[e.model] for e in entries}
            break
    units = {unit for unit, _ in values.values()}
    best = {unit: pick(n for u, n in values.values() if u == unit) for unit in units}
    chosen = [e for e in entries if values[e.model][1] == best[values[e.model][0]]]
    if len(units) == 1:
        return chosen, f" with the {word} input size"
    # token counts and image sizes do not compare: the extreme of each
    return chosen, f" with the {word} input size of their kind ({' and '.join(sorted(units))})"


_PARAMETERS = re.compile(r"\bparam(?:eter)?s?\b|\bparameter count\b|\bnumber of (?:weights|parameters)\b", re.I)
_NAME_SIZE = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?)\s*[bB]\b")


def _by_parameters(question: str, entries: list[CatalogEntry]) -> CatalogAnswer | None:
    """The largest/smallest model by parameter count, which the table does not list: read from the sizes the
    model names carry ("1.5B"), and said so."""
    found = _EXTREME.search(question)
    if not found or not _PARAMETERS.search(question):
        return None
    sized = {e: float(m.group(1)) for e in entries if (m := _NAME_SIZE.search(e.model.replace("-", " ")))}
    if not sized:
        return None
    pick = max if found.group("max") else min
    value = pick(sized.values())
    chosen = [e for e, v in sized.items() if v == value]
    unsized = [e.model for e in entries if e not in sized]
    word = "largest" if found.group("max") else "smallest"
    text = (f"The catalog table lists no parameter counts. By the sizes in the model names, the {word} is "
            f"{' and '.join(e.model for e in chosen)} ({value:g}B parameters).")
    if unsized:
        text += f" Names without a size: {', '.join(unsized)}."
    return CatalogAnswer(text=text, entries=tuple(chosen), aggregate=True)


def answer_aggregate(question: str, catalog: Catalog, filters: dict[str, str]) -> CatalogAnswer:
    """List (or count) the catalog rows that satisfy every filter (the largest/smallest input when asked)."""
    if (by_size := _by_parameters(question, [e for e in catalog if _passes(e, filters)])) is not None:
        return by_size
    selected, extreme = _extreme_sizes(question, [e for e in catalog if _passes(e, filters)])
    if filters or not extreme:
        described = _describe_filters(filters) + extreme
    else:  # "8 models ... have the largest input size of their kind"
        described = "have" + extreme.replace(" with", "", 1)
    if len(selected) == 1:  # "1 model ... uses", not "use"
        for plural, singular in (("are large language models", "is a large language model"),
                                 ("are diffusion (image generation) models", "is a diffusion (image generation) model"),
                                 ("are computer-vision models", "is a computer-vision model"),
                                 ("have ", "has "), ("come from", "comes from"), ("use ", "uses ")):
            described = described.replace(plural, singular)
    if not selected:
        text = f"No model in the benchmark catalog {described}. The catalog lists {len(catalog)} models."
    elif _COUNT.search(question):
        text = (f"{len(selected)} model{'s' if len(selected) != 1 else ''} in the benchmark catalog "
                f"{described}: " + ", ".join(e.model for e in selected) + ".")
        if (attribute := asked_attribute(question)) is not None:  # "how many ..., and what input size?"
            text += " " + _field_of_each(selected, attribute)
    else:
        header = f"{len(selected)} model{'s' if len(selected) != 1 else ''} in the benchmark catalog {described}:"
        # the publisher or link also asked for, unless it is what the list is chosen by ("come from Meta")
        extra = asked_attribute(question) if asked_attribute(question) in {"network", "url"} and not (
            {"network", "link"} & set(filters)) else None
        text = "\n".join([header, *(f"- {e.model} ({e.task}, input size {e.input_size}"
                                     + (f", {_FIELD_LABEL[extra]} {field_value(e, extra) or 'not given'}"
                                        if extra else "") + ")" for e in selected)])
    return CatalogAnswer(text=text, entries=tuple(selected), aggregate=True, filters=filters)


def _field_of_each(entries: list[CatalogEntry] | tuple[CatalogEntry, ...], attribute: str) -> str:
    """One field of several rows in a sentence: the shared value once, or each model's."""
    values = [field_value(e, attribute) or "not given" for e in entries]
    label = _FIELD_LABEL[attribute]
    if len(set(values)) == 1:
        return f"{'They all have' if len(entries) > 1 else 'It has'} the {label} {values[0]}."
    return f"Their {label}s: " + ", ".join(f"{e.model} {v}" for e, v in zip(entries, values, strict=True)) + "."


def _passes(entry: CatalogEntry, filters: dict[str, str]) -> bool:
    if "input_size" in filters and normalize_size(entry.input_size) != filters["input_size"]:
        return False
    if "category" in filters and entry.category != filters["category"]:
        return False
    if "task" in filters and entry.task != filters["task"]:
        return False
    if "tasks" in filters and entry.task not in filters["tasks"].split("|"):
        return False
    if "link" in filters and _link_repository(entry) != filters["link"]:
        return False
    if "exclude" in filters and entry.category in filters["exclude"].split("|"):
        return False
    if "input_size_not" in filters and normalize_size(entry.input_size) == filters["input_size_not"]:
        return False
    if "input_size_compare" in filters and not _compares(entry, filters["input_size_compare"]):
        return False
    return "network" not in filters or bool(set(filters["network"].split("|")) & _publisher_words(entry))


def _size_label(size: str) -> str:
    """A normalised input size as the table writes it ("128k" → "128K", "224x224")."""
    return size.upper() if size.endswith("k") else size


def _describe_filters(filters: dict[str, str]) -> str:
    parts = []
    if "category" in filters:
        parts.append({"llm": "are large language models", "diffusion": "are diffusion (image generation) models",
                      "vision": "are computer-vision models"}.get(filters["category"], ""))
    if "task" in filters:
        parts.append(f"have the task \"{filters['task']}\"")
    if "tasks" in filters:
        parts.append("have the task " + " or ".join(f'"{t}"' for t in filters["tasks"].split("|")))
    if "network" in filters:
        parts.append("come from " + " or ".join(_PUBLISHER_NAMES.get(word, word.capitalize())
                                                for word in filters["network"].split("|")))
    if "link" in filters:
        parts.append(f"link to {filters['link']}")
    if "exclude" in filters:
        names = {"llm": "large language models", "diffusion": "diffusion models", "vision": "computer-vision models"}
        parts.append("are not " + " or ".join(names[c] for c in filters["exclude"].split("|")))
    if "input_size_not" in filters:
        parts.append(f"do not use input size {_size_label(filters['input_size_not'])}")
    if "input_size" in filters:
        parts.append(f"use input size {_size_label(filters['input_size'])}")
    if "input_size_compare" in filters:
        operator, side, size = re.match(r"([<>]=?)(side:)?(.*)", filters["input_size_compare"]).groups()
        words = {">": "larger than", ">=": "of at least", "<": "smaller than", "<=": "of at most"}[operator]
        parts.append(f"have images with a side {words} {size} pixels" if side
                     else f"have an input size {words} {_size_label(size)}")
    return " and ".join(p for p in parts if p) or "in total"

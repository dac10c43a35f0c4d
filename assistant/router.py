"""Decide what a message asks for: a tool run, a catalog lookup, or an FAQ answer.

Rules recognise what a tiny LLM cannot be trusted with: catalog model names (via the
catalog matcher), benchmark hints, precisions, devices and requests to run something
on the user's own machine. Anything else goes to retrieval + grounded generation,
which refuses when nothing relevant is found.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from assistant.catalog import Catalog, CatalogEntry, token_match, tokens, written_sizes
from assistant.catalog_qa import (
    ATTRIBUTES,
    CLAIMED_SIZE,
    CLAIMED_TASK,
    ONLY_ONE,
    aggregate_filters,
    asked_attribute,
    claimed_attribute,
    is_aggregate_question,
)
from assistant.grounding import content_words
from assistant.phrasing import asked_clause, asked_sentence, is_claim
from assistant.tools.diffusion_bench import arguments_from_text as diffusion_arguments
from assistant.tools.diffusion_workloads import is_diffusion_workload
from assistant.tools.llm_workloads import is_llm_workload

_MY_MACHINE = (r"\b(?:on|of|for|with|using)\s+(?:my|this|the local|our|the current)\s+"
               r"(?:own\s+)?(?:cpu|gpu|npu|machine|box|hardware|computer|system|laptop|server|pc|host|device)\b"
               r"|\blocally\b|\bhere\b|\bon this\b")
_RUN_VERB = r"\b(?:run|benchmark|bench|measure|profile|time|test|compare|execute|try|launch|start)\b"
_MEASURED = r"\b(?:latency|throughput|fps|speed|fast|performance|numbers|ms|seconds?|minutes?)\b"
_HOW_TO = re.compile(r"(?:^|[.?!;]\s+)\s*(?:how(?!\s+(?:fast|quick|quickly|long|many|much (?:time|memory|ram))\b)"
                     r"|why|where|when|what should|what tool|which tool|can i|should i|do i)\b", re.I)
_PLEASE_RUN = re.compile(
    r"\b(?:please|pls|go ahead and|could you|can you|would you)\s+(?:you\s+)?(?:run|benchmark|measure|test|profile"
    r"|compare|try|time|execute|launch|start)\b"
    r"|(?<!you )(?<!they )\brun it\b(?! at\b)|\bfor me\b|\blet (?:it|them|this|that) run\b"
    r"|\bi(?: need| want|['’]d like) (?:\w+ ){0,3}(?:numbers|figures|results|measurements|a benchmark)\b"
    # "give X a 20 second benchmark run", "do a quick test of X", "kick off a benchmark"
    r"|\b(?:give|perform|kick off|launch|fire up|(?:do|start) (?:a|an|one|another|some))\b.{0,60}"
    r"\b(?:benchmark|run|test|measurement)\b"
    # "I want to see the max throughput of X", "let's see how fast X is"
    r"|\b(?:i(?: want| would like|['’]d like| need) to|let['’]?s|let me) (?:see|know|measure|get|check|find out)\b"
    r"(?!\s+(?:how|why|where|when|which tool|what tool)\b).{0,60}"
    r"\b(?:throughput|latency|fps|speed|fast|performance|numbers?)\b", re.I)
# a run verb opening any sentence: "How quick is it? Measure its first-token latency."
_IMPERATIVE = re.compile(rf"(?:^|[.?!;]\s+)(?:please\s+)?{_RUN_VERB}", re.I)
_SYSTEM = re.compile(
    r"\b(?:system|machine|hardware|computer|cpu|processor|box|host)\s*(?:info(?:rmation)?|details|specs?"
    r"|configuration|config)\b|\bsysinfo\b"
    r"|\bunder the hood\b|\bspecs\b"
    r"|\b(?:my|this|our)\s+(?:cpu|processor|machine|system|hardware|computer|box|host|server|pc|laptop)\b.*"
    r"\b(?:support|have|has|what|which|model|cores?|memory|avx\S*|vnni|amx|isa|devices?)\b"
    r"|\b(?:what|which)\s+(?:cpu|processor|hardware|devices?)\s+(?:do|does|is|am|are)\b.*\b(?:i|my|this|we)\b",
    re.I)
# facts of this machine asked without the words above: "How much memory does this computer have?",
# "Which OpenVINO version is installed here, and what devices can it see?"
_SYSTEM_FACT = re.compile(r"\b(?:memory|ram|cores?|threads|openvino version|version of openvino|devices?|isa"
                          r"|gpus?|npus?|instruction sets?|operating system|kernel version)\b", re.I)
_LOCAL = re.compile(r"\b(?:my|this (?:computer|machine|box|system|host|server|laptop|pc)|here|installed|locally"
                    r"|do i have|have i got|on this)\b", re.I)
_LLM_BENCH = re.compile(
    r"\b(?:llm|language model|your (?:own )?model|assistant['’]?s? (?:own )?(?:model|llm)|your llm|generation speed"
    r"|tokens? per second|tokens?/s|first[- ]token|time to first token|ttft|smollm|chat model|built-in model"
    r"|(?:you|your model|the assistant) generates?|generat\w* text|text generat(?:ion|or)"
    r"|the model you (?:use|run))\b", re.I)
_HINTS = {"throughput": re.compile(r"throughput|\bfps\b|frames per second|async|batch(?:ed)?\b|how many .* per second"
                                   r"|durchsatz|d[ée]bit|吞吐|スループット|처리량", re.I),
          "latency": re.compile(r"latency|\bsync(?:hronous)?\b|response time|how long .* take|\bms\b"
                                r"|latenz|latence|latencia|latenza|lat[êe]ncia|延迟|时延|遅延|レイテンシ|지연", re.I)}
# ASCII lookarounds, not \b: in "FP16で" or "用INT8跑" the next character is a word character too
_PRECISIONS = {"int8": re.compile(r"(?<![A-Za-z0-9])int-?8(?![0-9])|8-?bit|quantiz", re.I),
               "fp16": re.compile(r"(?<![A-Za-z0-9])fp-?16(?![0-9])|half[- ]precision|16-?bit float", re.I),
               "fp32": re.compile(r"(?<![A-Za-z0-9])fp-?32(?![0-9])|full[- ]precision|32-?bit float", re.I)}
_DEVICE = re.compile(r"(?<![A-Za-z])(cpu|gpu|npu|auto)(?![A-Za-z])", re.I)  # also "GPUで", "在GPU上"
_SECONDS = re.compile(r"(?<![\w.])(\d+)[\s-]*(?:(?:s|sec|secs|seconds?|sekunden|secondes?|segundos?|secondi)\b|秒|초)"
                      r"|(?<!\d)(\d+)\s*(?:秒|초)", re.I)
_MINUTES = re.compile(r"\b(\d+|an?|one|half an?)[\s-]*(?:min|mins|minutes?)\b", re.I)
_PATH = re.compile(r"(?P<path>(?:[~./\w-]*/)?[\w.-]+\.(?:xml|onnx))\b", re.I)
_TOKENS = re.compile(r"\b(\d+)\s*(?:prompt|input)\s*tokens?\b"
                     r"|\bprompts? (?:of|with|is|has|at|de|von|mit|avec|con|di|com) (\d+)\s*tokens?\b"
                     r"|\b(\d+)[\s-]*tokens?[\s-]+(?:prompt|input)\b"
                     r"|(?<!\d)(\d+)\s*(?:tokens?|トークン|个?令牌|토큰)\s*(?:の|的)?\s*(?:プロンプト|提示|프롬프트)",
                     re.I)
_NEW_TOKENS = re.compile(r"\b(\d+)\s*(?:new|output|generated)\s*tokens?\b"
                         r"|\b(\d+)\s*tokens?\s+(?:nuevos|nouveaux|neue|nuovi|novos)\b"
                         r"|\b(\d+)\s*(?:neue|nouveaux|nuevos|nuovi|novos)\s+tokens?\b"
                         r"|\b(?:generat|produc|output)\w*\s+(\d+)\b"
                         r"(?!\s*(?:s|sec|secs|seconds?|min|minutes?|iterations?|times|runs|prompt|input)\b)"
                         r"|\b(\d+)[\s-]*tokens?[\s-]+(?:output|answer|completion|generation)\b", re.I)
_ITERATIONS = re.compile(r"\b(\d+)\s*(?:iterations?|runs|times|repetitions?|passes)\b", re.I)


@dataclass(frozen=True, kw_only=True)
class Route:
    """What to do with a message."""

    kind: str  # "tool" | "clarify" | "catalog" | "unlisted" | "not_held" | "aggregate" | "faq"
    tool: str | None = None
    arguments: dict[str, Any] = field(default_factory=dict)
    entries: tuple[CatalogEntry, ...] = ()
    attribute: str | None = None
    filters: dict[str, str] = field(default_factory=dict)
    message: str = ""  # clarifying question, when kind == "clarify"
    mention: str = ""  # the model name asked about, when kind == "unlisted" (not in the catalog)


def route(question: str, catalog: Catalog) -> Route:
    """Route one message (the latest user turn)."""
    tool_route = _tool_route(question, catalog)
    if tool_route is not None:
        return tool_route
    matches, other = listed_matches(question, catalog)
    asked = asked_clause(question)  # the ask without its background ("We size edge boxes, so ...")
    attribute = (asked_attribute(asked) or (asked_attribute(question) if _REFERS_BACK.search(asked) else None)
                 or (claimed_attribute(_without_names(asked, matches)) if matches and is_claim(question) else None))
    # a fragment ("8K input size models") only as the whole message, not what is left of a sentence
    if is_aggregate_question(asked, fragment=asked == question) and not _HOW_TO.search(asked):
        # a named model's own words filter nothing ("Stable Diffusion" is no family filter in "Is Stable-Diffusion-
        # V1-5 the only entry spelled 'Hugginface'?")
        exact = [m for m in matches if m.score == 1.0]
        filters = (aggregate_filters(_without_names(asked, exact), catalog)
                   or aggregate_filters(_without_names(question, exact), catalog))
        about_catalog = re.search(r"\b(?:catalog|benchmark(?:ed)?|models? (?:list|table)|workloads?|roster|lineup"
                                  r"|in (?:the|your) (?:list|table)|you (?:test|benchmark|measure))\b"
                                  r"|\b(?:models?|networks?|llms?|list|table)\b.*\b(?:largest|longest|smallest|shortest"
                                  r"|biggest)\b|\b(?:largest|longest|smallest|shortest|biggest)\b.*\b(?:list|table)\b",
                                  question, re.I)
        if (filters and not (exact and attribute and not ONLY_ONE.search(asked))) or (not exact and about_catalog):
            return Route(kind="aggregate", filters=filters)
    if matches:
        entries = _resolved(question, catalog, matches)
        named_exactly = matches[0].score == 1.0 and not _HOW_TO.search(asked)
        if attribute is not None and only_about(_without_attribute(asked), entries, allowed=3):
            return Route(kind="catalog", entries=entries, attribute=attribute)
        if attribute is None and (named_exactly or _asks_about(asked)) and only_about(question, entries):
            return Route(kind="catalog", entries=entries)
    elif other and (attribute is not None or _asks_about(asked)):
        return Route(kind="unlisted", entries=other[1], attribute=attribute, mention=other[0])
    return Route(kind="faq")


def listed_matches(question: str, catalog: Catalog) -> tuple[list, tuple[str, tuple[CatalogEntry, ...]] | None]:
    """Catalog matches of the question that name the catalog's own model, and, when every match names
    another model of its family ("Gemma-2-27B" for Gemma-2-9B), that name with the entries it resembles."""
    matches = catalog.match(question)
    listed = catalog.named_matches(question)
    if matches and not listed:
        mention = catalog.other_model(question, matches[0].entry) or ""
        return [], (mention, tuple(m.entry for m in matches[:3]))
    return listed, None


_COMPARISON = re.compile(r"\b(?:than|vs\.?|versus|compared?|comparison|or|and|both)\b", re.I)
_COMPARED_SCORE = 0.6  # a second model named loosely ("Mistral 7B") beside one named exactly


def _resolved(question: str, catalog: Catalog, matches) -> tuple[CatalogEntry, ...]:
    exact = [m.entry for m in matches if m.score == 1.0]
    if exact and _COMPARISON.search(question):
        # "Is Mistral 7B tested with a longer context than Llama 2?": every model compared, also one named
        # loosely, when it is of another family than those named exactly
        families = {tokens(e.model)[0] for e in exact}
        exact += [m.entry for m in matches if m.score >= _COMPARED_SCORE and m.entry not in exact
                  and tokens(m.entry.model)[0] not in families]
    if exact:
        return tuple(exact)
    best = catalog.find(question)
    if best is not None:
        return (best,)
    top = matches[0].weight
    return tuple(m.entry for m in matches if abs(m.weight - top) < 1e-6)


# an ask that points back into its background ("The SD row lists one number as its input size; what is that
# value?")
_REFERS_BACK = re.compile(r"^\W*(?:what|which)\s+(?:is|are|was|were)\s+(?:that|this|the|those|these)\s+"
                          r"(?:value|number|figure|one|size|field|entry)s?\W*$", re.I)

# words that ask about a model without asking anything else ("Tell me about yolov8n in the benchmarks")
_ABOUT_WORDS = frozenset({"tell", "describe", "info", "information", "details", "detail", "show", "know", "about",
                          "benchmark", "benchmarks", "benchmarked", "catalog", "list", "table", "model", "network",
                          "workload", "faq", "entry", "row", "say", "says", "does", "used", "use", "please", "thanks",
                          "version", "variant", "one", "models", "networks", "workloads", "entries", "listed", "lists",
                          "catalogue"})


def only_about(question: str, entries: tuple[CatalogEntry, ...], *, allowed: int = 2) -> bool:
    """The question is about the named model(s) and nothing else (at most `allowed` other words): "What is
    yolov8n?", not "how many epochs should I train yolov8n", "what throughput does an A100 get on resnet-50"
    or "may I ship the Llama-3-8b weights under its license" (those go to retrieval, which answers from the
    FAQ or refuses)."""
    names = {t for e in entries for t in tokens(f"{e.model} {e.network} {e.task}")}
    rest = [w for w in content_words(written_sizes(question)) if w not in _ABOUT_WORDS and len(w) > 1
            and not set(tokens(w)) <= names and not any(token_match(n, t) for t in tokens(w) for n in names)]
    return len(rest) <= allowed


def without_model_names(text: str, catalog: Catalog) -> str:
    """The text with the catalog model names it contains replaced by "X" (what is asked, not of which model)."""
    names = {t for m in catalog.match(text) for t in tokens(m.entry.model)}
    return " ".join("X" if tokens(w) and set(tokens(w)) <= names else w for w in text.split())


def _without_names(text: str, matches) -> str:
    """The text without the words of the matched models' names."""
    names = {t for m in matches for t in tokens(m.entry.model)}
    return " ".join(w for w in text.split() if not set(tokens(w)) <= names)


def _without_attribute(question: str) -> str:
    """The question without the words that name the asked field ("input size", "who publishes") or a value
    that a claim gives it ("... a 128K input, right?")."""
    for pattern in (*ATTRIBUTES.values(), CLAIMED_SIZE, CLAIMED_TASK):
        question = pattern.sub(" ", question)
    return question


def _asks_about(question: str) -> bool:
    return bool(re.search(r"^\s*(?:what|tell me|describe|info|details|show me)\b.*\b(?:is|about|on|for)\b"
                          r"|^\s*(?:what|which)\s+is\b", question, re.I)) and not _HOW_TO.search(question)


# "benchmark numbers", "benchmark models": the word names a thing, it asks for no run
_NOUN_USE = re.compile(r"(?<!please )(?<!pls )(?<!you )(?<!to )(?<!and )"  # "please benchmark model X" is a request
                       r"\b(?:benchmark(?:ed|ing)?|test|performance)\s+(?:numbers|results?|models?|networks?|data"
                       r"|figures|scores|methodology|list|catalog|page|site|questions?|tool|suite|set|charts?)\b", re.I)
# "I don't need you to run anything, just the published figure": no run request
_NO_RUN = re.compile(r"\b(?:don't|do not|no need to|not|never|without)\s+"
                     r"(?:need\s+(?:you\s+)?to\s+|want\s+(?:you\s+)?to\s+)?(?:run|benchmark|measure|test|execute|launch)\w*\b",
                     re.I)
# a fragment without a question word ("bert-base-cased int8 throughput cpu")
_QUESTION_WORD = re.compile(r"\?|\b(?:what|which|how|who|why|where|when|is|are|does|do|can|could|should|would)\b", re.I)


def _terse_run(question: str, catalog: Catalog) -> bool:
    """A search-box style run request: a catalog model with run settings or a run verb, and no question
    ("mask_rcnn_resnet50_atrous_coco fp16 benchmark run", "bert-base-cased int8 throughput cpu")."""
    if _QUESTION_WORD.search(question) or len(question.split()) > 8 or not catalog.named_matches(question):
        return False
    settings = _run_settings(question)
    return settings >= 2 or (settings >= 1 and bool(re.search(_RUN_VERB, _NOUN_USE.sub(" ", question), re.I)))


def _wants_run(question: str) -> bool:
    """An explicit request to execute something here, not a question about how to."""
    question = _NOUN_USE.sub(" ", question)
    if _NO_RUN.search(question):
        return False
    if asked_attribute(question) and not re.search(_MEASURED, asked_sentence(question), re.I):
        return False  # "compare the input sizes of X and Y": a catalog question, nothing to measure
    if _PLEASE_RUN.search(question) or _IMPERATIVE.search(question):
        return True
    if _HOW_TO.search(question):
        return False
    if re.search(_RUN_VERB, question, re.I) and _run_settings(question) >= 2:
        return True  # "bert-base-cased, fp16, latency hint, 15 seconds": settings for a run, not a question
    if _LLM_BENCH.search(question) and (_TOKENS.search(question) or _NEW_TOKENS.search(question)
                                        or _ITERATIONS.search(question)):
        return True  # "how fast do you generate text? Feed 512 prompt tokens": settings for an LLM run
    return bool(re.search(_MY_MACHINE, question, re.I)) and bool(
        re.search(rf"{_RUN_VERB}|latency|throughput|fps|fast|speed|performance|tokens?[- ]per[- ]second|tokens?/s",
                  question, re.I))


def _run_settings(question: str) -> int:
    """How many kinds of benchmark setting (hint, precision, duration, device) the text names."""
    kinds = (_HINTS.values(), _PRECISIONS.values(), (_SECONDS, _MINUTES), (_DEVICE,))
    return sum(any(pattern.search(question) for pattern in kind) for kind in kinds)


def _tool_route(question: str, catalog: Catalog) -> Route | None:
    if _SYSTEM.search(question) and not _HOW_TO.search(question.replace("what cpu", "")):
        return Route(kind="tool", tool="system_info")
    if not _wants_run(question) and not _terse_run(question, catalog):
        if (_SYSTEM_FACT.search(question) and _LOCAL.search(question)
                and not _HOW_TO.search(re.sub(r"\bdo i have\b", "", question, flags=re.I))
                and not catalog.match(question) and not re.search(_RUN_VERB, question, re.I)):
            return Route(kind="tool", tool="system_info")
        return None
    if _LLM_BENCH.search(question):
        return Route(kind="tool", tool="benchmark_llm", arguments=_llm_bench_args(question))
    return _benchmark_route(question, catalog, asked_for=False)


def tool_route(question: str, catalog: Catalog, tool: str) -> Route:
    """The route of a message known to request `tool` (the intent classifier said so): the rules only read
    its arguments."""
    if tool == "system_info":
        return Route(kind="tool", tool="system_info")
    if tool == "benchmark_llm":
        return Route(kind="tool", tool="benchmark_llm", arguments=_llm_bench_args(question))
    route_ = _benchmark_route(question, catalog, asked_for=True)
    assert route_ is not None
    return route_


def _benchmark_route(question: str, catalog: Catalog, *, asked_for: bool) -> Route | None:
    """A run_benchmark route with the arguments the text gives (or a clarifying question); None when the text
    names nothing to run here and was not known to ask for a run."""
    arguments: dict[str, Any] = {}
    path = _PATH.search(question)
    matches, other = listed_matches(question, catalog)
    if path:
        arguments["model"] = path.group("path")
    elif matches:
        entries = _resolved(question, catalog, matches)
        if len(entries) > 1:
            names = ", ".join(e.model for e in entries)
            return Route(kind="clarify", tool="run_benchmark", entries=entries,
                         message=f"Which model should I benchmark? Several catalog models match: {names}.")
        arguments["model"] = entries[0].model
    elif other:
        return Route(kind="clarify", tool="run_benchmark", entries=other[1], mention=other[0],
                     message=f"{other[0]} is not a workload of the benchmark catalog, so I will not benchmark "
                             f"another model in its place. Did you mean {' or '.join(e.model for e in other[1])}? "
                             "Or give the path of your own .xml/.onnx model.")
    elif not asked_for and not re.search(_MY_MACHINE, question, re.I) and not re.search(r"\bbenchmark", question, re.I):
        return None  # "can you compare Core ML on an M3 ..." asks about something else, not for a run here
    else:
        return Route(kind="clarify", tool="run_benchmark",
                     message="Which model should I benchmark? Name a catalog workload (for example resnet-50, "
                             "mobilenet-v2 or bert-base-cased) or the path of your own .xml/.onnx model.")
    wanted = _NOT_SETTING.sub(" ", question)  # "the latency, not the throughput": the setting is latency
    for hint, pattern in _HINTS.items():
        if pattern.search(wanted):
            arguments["hint"] = hint
            break
    for precision, pattern in _PRECISIONS.items():
        if pattern.search(wanted):
            arguments["precision"] = precision
            break
    if device := _DEVICE.search(question):
        arguments["device"] = device.group(1).upper()
    if seconds := _SECONDS.search(question):
        arguments["seconds"] = _count(next(g for g in seconds.groups() if g))
    elif minutes := _MINUTES.search(question):
        amount = minutes.group(1).lower()
        arguments["seconds"] = 30 if amount.startswith("half") else 60 if not amount.isdigit() else _count(amount) * 60
    if is_llm_workload(str(arguments.get("model", ""))):  # a catalog LLM is measured like llm_bench does
        llm_arguments = {"model": arguments["model"], **_llm_bench_args(question)}
        if arguments.get("precision") == "int8":
            llm_arguments["precision"] = "int8"
        return Route(kind="tool", tool="benchmark_llm", arguments=llm_arguments)
    if is_diffusion_workload(str(arguments.get("model", ""))):  # a diffusion pipeline: Text2ImagePipeline
        return Route(kind="tool", tool="benchmark_diffusion", arguments=diffusion_arguments(question, arguments))
    return Route(kind="tool", tool="run_benchmark", arguments=arguments)


# a setting the request rules out ("not the throughput", "rather than fp32", "instead of int8")
_NOT_SETTING = re.compile(r"\b(?:not|n't|rather than|instead of|but not|other than)\s+(?:in\s+|the\s+|with\s+|at\s+)?"
                          r"(?:throughput|latency|fps|int-?8|fp-?16|fp-?32)\b", re.I)


def _llm_bench_args(question: str) -> dict[str, Any]:
    arguments: dict[str, Any] = {}
    if match := _TOKENS.search(question):
        arguments["prompt_tokens"] = _count(next(g for g in match.groups() if g))
    if match := _NEW_TOKENS.search(question):
        arguments["max_new_tokens"] = _count(next(g for g in match.groups() if g))
    if match := _ITERATIONS.search(question):
        arguments["iterations"] = _count(match.group(1))
    return arguments


def _count(digits: str) -> int:
    """A number from the text; absurdly long ones are capped (the tool's schema then rejects them clearly)."""
    return int(digits) if len(digits) <= 18 else 10**18


__all__ = ["Route", "aggregate_filters", "listed_matches", "only_about", "route", "tool_route", "without_model_names"]

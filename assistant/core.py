"""The Assistant: route → retrieve → (tool) → generate → Answer, as a stream of events."""

from __future__ import annotations

import dataclasses
import queue
import re
import threading
import time
import unicodedata
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from assistant import language
from assistant.answer import (
    Answer,
    DoneEvent,
    Event,
    Source,
    SourcesEvent,
    TokenEvent,
    ToolCall,
    ToolProgressEvent,
    ToolResultEvent,
    ToolStartedEvent,
)
from assistant.catalog import Catalog, CatalogEntry, catalog_from_documents
from assistant.catalog_qa import (
    CatalogAnswer,
    aggregate_filters,
    answer_about,
    answer_aggregate,
    answer_not_held,
    answer_unlisted,
    asked_attribute,
    field_value,
    model_like_name,
)
from assistant.config import Settings
from assistant.errors import AssistantError, InvalidQuestion, ToolError
from assistant.grounding import (
    build_messages,
    content_words,
    ensure_citation,
    is_supported,
    sentences,
    source_body,
)
from assistant.intent import TOOL_INTENTS, Prediction
from assistant.knowledge import Chunk, load_documents
from assistant.phrasing import asked_clause, expand_shorthand, question_parts
from assistant.prose_check import Repeating, RepetitionWatch, repeated_phrase
from assistant.prose_check import problems as prose_problems
from assistant.provenance import speaker
from assistant.relevance import RelevanceGate
from assistant.router import Route, only_about, route, tool_route, without_model_names
from assistant.spelling import SpellFixer, vocabulary_words
from assistant.synonyms import faq_words
from assistant.tool_summary import summarize
from assistant.tools.policy import Caller, ToolPolicy

if TYPE_CHECKING:
    from assistant.understanding import Passage

QUOTE_WORD_WEIGHT = 0.5  # the share of the asked words a sentence has, next to its similarities
# Sources below this cosine similarity, or this far below the best one, are not cited.
CITE_THRESHOLD = 0.25
CITE_MARGIN = 0.25
# Below this share of supported words, the model's sentence is flagged as unsupported.
GROUNDING_THRESHOLD = 0.5
REFUSAL = ("I can only answer questions about OpenVINO performance benchmarks (the Performance "
           "Information F.A.Q. and its workload catalog) and run benchmarks on this machine. "
           "I found nothing about that in my sources, so I will not guess.")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# invisible format characters: soft hyphen, zero-width spaces/joiners, bidi overrides and isolates, BOM
_INVISIBLE = re.compile("[\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_LETTERS = re.compile(r"[^\W\d_]+")


def clean_question(text: Any, *, max_chars: int) -> str:
    """Validate a question: text, not empty, not too long, no look-alike letters in a word.

    The text is NFKC-normalised (fullwidth letters become ASCII); control and invisible characters
    (zero-width, bidi overrides) are removed.
    """
    if not isinstance(text, str):
        raise InvalidQuestion("the question must be text")
    if _SURROGATE.search(text):
        raise InvalidQuestion("the question is not valid Unicode text (it contains lone surrogates)",
                              hint="Send the question as UTF-8 text.")
    cleaned = _visible(unicodedata.normalize("NFKC", text)).strip()
    if not cleaned:
        raise InvalidQuestion("the question is empty", hint="Ask something, e.g. \"How is latency measured?\"")
    if len(cleaned) > max_chars:
        raise InvalidQuestion(
            f"the question is too long ({len(cleaned)} characters; the limit is {max_chars})",
            hint="Shorten it to the question itself.",
        )
    if (word := _mixed_script_word(cleaned)) is not None:
        odd = next(c for c in word if _lookalike(c))
        raise InvalidQuestion(
            f"the word {word!r} mixes Latin letters with look-alike characters "
            f"({odd!r} is {unicodedata.name(odd, 'a non-Latin letter')})",
            hint="Retype the name in plain Latin letters, e.g. resnet-50.",
        )
    return cleaned


def _visible(text: str) -> str:
    """Invisible format characters removed, control characters turned into spaces."""
    return _CONTROL.sub(" ", _INVISIBLE.sub("", text))


def _lookalike(char: str) -> bool:
    """A Cyrillic or Greek letter (many look like Latin ones); the micro sign μ is a unit, not a look-alike."""
    return ("\u0370" <= char <= "\u03ff" and char != "\u03bc") or "\u0400" <= char <= "\u052f" \
        or "\u1f00" <= char <= "\u1fff"


def _mixed_script_word(text: str) -> str | None:
    """The first run of letters that mixes ASCII Latin letters with Cyrillic or Greek ones (a homoglyph)."""
    for match in _LETTERS.finditer(text):
        word = match.group()
        if any(c.isascii() for c in word) and any(_lookalike(c) for c in word):
            return word
    return None


def clean_history(history: Sequence[Any]) -> list[dict[str, str]]:
    """Earlier turns as {role, content} text: malformed turns dropped, control characters and lone
    surrogates removed (the history is context for routing and retrieval, never validated as strictly)."""
    turns = []
    for turn in history:
        if not isinstance(turn, dict) or not isinstance(turn.get("content"), str):
            continue
        content = _visible(_SURROGATE.sub("", turn["content"]))
        turns.append({"role": str(turn.get("role", "")), "content": content})
    return turns


class Assistant:
    """One assistant: knowledge, catalog, retriever, LLM (loaded lazily) and tools."""

    def __init__(self, settings: Settings, *, retriever, catalog: Catalog, chunks: Sequence[Chunk],
                 llm=None, llm_factory: Callable[[], Any] | None = None, tools=None, understanding=None) -> None:
        self.settings = settings
        self.retriever = retriever
        self.catalog = catalog
        self.chunks = {chunk.id: chunk for chunk in chunks}
        self.relevance = RelevanceGate(c.text for c in chunks if c.kind != "row")
        vocab = getattr(getattr(retriever, "embedder", None), "model_dir", None)
        self.spelling = SpellFixer(self.relevance.words,
                                   vocabulary_words(Path(vocab) / "vocab.txt") if vocab else ())
        self._llm = llm
        self._llm_factory = llm_factory
        self.understanding = understanding  # intent classifier + multilingual search; None: rules only
        self._llm_lock = threading.Lock()
        if tools is None:
            from assistant.tools import default_registry

            tools = default_registry(settings, get_llm=self.llm)
        self.tools = tools
        self.tool_policy = ToolPolicy.from_settings(settings)  # front ends may pass a stricter one

    @classmethod
    def create(cls, settings: Settings, *, llm=None, progress: Callable[[float, str], None] | None = None
               ) -> Assistant:
        """Build everything from settings: parse knowledge, load or build the index; LLM on first use."""
        from assistant.llm import load_llm
        from assistant.retrieval import Embedder, Retriever
        from assistant.understanding import Understanding

        documents = load_documents(settings.knowledge_dirs)
        chunks = [chunk for doc in documents for chunk in doc.chunks]
        embedder = Embedder(settings.embedder_cache_dir)
        retriever = Retriever.load_or_build(chunks, index_dir=settings.index_dir, embedder=embedder)
        catalog = catalog_from_documents(documents)
        understanding = Understanding.shared(settings.embedder_cache_dir, chunks,
                                             mask=lambda text: without_model_names(text, catalog))
        language.warm_up()
        return cls(settings, retriever=retriever, catalog=catalog, chunks=chunks,
                   llm=llm, llm_factory=lambda: load_llm(settings, progress=progress), understanding=understanding)

    # -- public API ---------------------------------------------------------------------------------

    def llm(self):
        """The LLM, loaded on first use (once, even with concurrent callers)."""
        if self._llm is None:
            with self._llm_lock:
                if self._llm is None:
                    if self._llm_factory is None:
                        raise AssistantError("no LLM is configured")
                    self._llm = self._llm_factory()
        return self._llm

    @property
    def llm_loaded(self) -> bool:
        """Whether the LLM has been loaded already."""
        return self._llm is not None

    def ask(self, question: str, *, history: Sequence[dict[str, str]] = (), tools: str | None = None,
            answer_id: str | None = None, caller: Caller | None = None) -> Answer:
        """Answer one question (blocking); see `stream` for the events."""
        answer = None
        for event in self.stream(question, history=history, tools=tools, answer_id=answer_id, caller=caller):
            if isinstance(event, DoneEvent):
                answer = event.answer
        assert answer is not None
        return answer

    def stream(self, question: str, *, history: Sequence[dict[str, str]] = (), tools: str | None = None,
               answer_id: str | None = None, caller: Caller | None = None) -> Iterator[Event]:
        """Answer one question as events: sources, tokens, tool events, and finally DoneEvent.

        `caller` (default: the CLI) is checked against the tool policy before a tool runs."""
        started = time.perf_counter()
        question = clean_question(question, max_chars=self.settings.max_question_chars)
        history = clean_history(history)
        caller = caller or Caller()
        tools_mode = (caller.policy or self.tool_policy).answer_mode(caller.front_end, tools)
        answer = Answer(question=question, answer="", id=answer_id)
        answer.language = (language.detect(question, jargon=self.relevance.words)
                           if self.understanding is not None else "en")
        if answer.language == "en":
            # "how ofen do u publish new perf numbers": routing and retrieval see the words meant
            question = self.spelling.fix(expand_shorthand(question))
        question = self._resolve_reference(question, history)
        prediction = self.understanding.predict(question) if self.understanding is not None else None
        answer.intent = prediction.label if prediction is not None else None
        decision = self._route(question, history, prediction, answer.language)
        answer.route = decision.kind
        if decision.kind in {"tool", "clarify"}:
            yield from self._tool_answer(question, decision, tools_mode, answer, started, caller)
        elif decision.kind in {"catalog", "aggregate", "unlisted", "not_held"}:
            yield from self._catalog_answer(question, decision, answer, started)
        elif answer.language != "en":
            yield from self._foreign_faq_answer(question, prediction, answer, started)
        else:
            yield from self._faq_answer(question, history, answer, started, prediction)
        answer.timings_ms["total"] = (time.perf_counter() - started) * 1000
        yield DoneEvent(answer)

    def run_tool(self, name: str, arguments: dict[str, Any], *,
                 progress: Callable[[float, str], None] | None = None,
                 cancel: threading.Event | None = None, caller: Caller | None = None) -> ToolCall:
        """Validate and run one tool if the tool policy lets `caller` (default: the CLI) run it; failures
        come back as a ToolCall with status error."""
        from assistant.tools.base import ToolContext

        caller = caller or Caller()
        cancel = cancel or caller.cancel
        call = ToolCall(name=name, arguments=dict(arguments) if isinstance(arguments, dict) else {}, status="planned")
        try:
            tool = self.tools.get(name)
            (caller.policy or self.tool_policy).check(name, caller.front_end)
            call.arguments = tool.validate(dict(arguments) if isinstance(arguments, dict) else arguments,
                                           self.settings)
            context = ToolContext(settings=self.settings, progress=progress or (lambda f, m: None),
                                  cancel=cancel)
            call.result = tool.function(call.arguments, context)
            call.status = "ok"
        except AssistantError as error:
            call.status, call.error, call.error_type = "error", str(error), type(error).__name__
        except Exception as error:  # a tool bug must come back to the conversation, not crash it
            call.status, call.error = "error", f"{name} failed: {error.__class__.__name__}: {error}"
            call.error_type = "ToolExecutionError"
        return call

    def sources_for(self, query: str, k: int | None = None) -> tuple[list[Source], float, float]:
        """Top-k sources for a query, the best dense similarity, and the retrieval time in ms."""
        t0 = time.perf_counter()
        hits = self.retriever.search(query, k=k or self.settings.top_k, keywords=faq_words(query))
        elapsed = (time.perf_counter() - t0) * 1000
        sources = [Source(id=h.chunk.id, title=h.chunk.title, text=h.chunk.text, score=float(h.similarity),
                          file=h.chunk.source) for h in hits]
        best = max((float(h.similarity) for h in hits), default=0.0)
        return sources, best, elapsed

    # -- routes -------------------------------------------------------------------------------------

    def _resolve_reference(self, question: str, history: Sequence[dict[str, str]]) -> str:
        """"who publishes it?" after a question about resnet-50 → "who publishes resnet-50?": a pronoun for
        a model stands for the model the conversation was last about (one model, named in a turn)."""
        found = _REFERENCE.search(question)
        if not history or found is None or self.catalog.match(question):
            return question
        for turn in reversed(history):
            entry = self.catalog.find(turn.get("content", ""))
            if entry is not None:
                name = f"{entry.model}'s" if found.group(0).lower() == "its" else entry.model
                return f"{question[:found.start()]}{name}{question[found.end():]}"
        return question

    def _route(self, question: str, history: Sequence[dict[str, str]], prediction: Prediction | None = None,
               lang: str = "en") -> Route:
        if prediction is not None and lang != "en":
            return self._with_numbers(question, self._intent_route(question, prediction))
        decision = route(question, self.catalog)
        if prediction is not None:
            decision = self._with_numbers(question, self._reconciled(question, decision, prediction))
        if decision.kind == "faq" and history:
            # a short follow-up ("and for yolov8n?") inherits what the previous question asked about
            previous = next((t["content"] for t in reversed(history) if t.get("role") == "user"), "")
            matches = self.catalog.match(question)
            attribute = asked_attribute(previous)
            if matches and attribute and len(question.split()) <= 8:
                entries = tuple(m.entry for m in matches if m.weight == matches[0].weight)
                return Route(kind="catalog", entries=entries, attribute=attribute)
        return decision

    def _with_numbers(self, question: str, decision: Route) -> Route:
        """A run request's numeric settings the patterns did not read ("5 iteraciones", "生成は256トークン"),
        read by the slot filler learned from examples; what the patterns read stays."""
        if decision.kind != "tool" or not decision.tool or self.understanding is None:
            return decision
        found = self._stated_settings(question, decision.tool, known=decision.arguments)
        # a number the patterns gave to a setting already is not read twice (unless the message says it twice)
        said = Counter(int(n) for n in re.findall(r"\d+", question))
        taken = Counter(value for value in decision.arguments.values() if isinstance(value, int))
        found = {name: value for name, value in found.items() if said[value] > taken[value]}
        return dataclasses.replace(decision, arguments={**decision.arguments, **found}) if found else decision

    def _stated_settings(self, question: str, tool: str, *, known: Iterable[str] = ()) -> dict[str, int]:
        """The numeric settings of `tool` (other than `known`) that the slot filler learned from examples reads
        in the message."""
        properties = self.tools.get(tool).parameters.get("properties", {})
        wanted = {name for name, spec in properties.items() if spec.get("type") == "integer"} - set(known)
        return self.understanding.slots.slots(question, wanted)

    def _reconciled(self, question: str, rules: Route, prediction: Prediction) -> Route:
        """The rules' route, unless the intent learned from the corpus confidently says otherwise: a how-to
        question that mentions running is no run request, and a request the rules miss is one."""
        label, confidence = prediction.label, prediction.confidence
        tools = sum(prediction.p(t) for t in TOOL_INTENTS)
        if rules.kind in {"tool", "clarify"} and label not in TOOL_INTENTS and (
                tools < UNLIKELY_TOOL or (confidence >= OVERRULE_TOOL and tools < OVERRULE_TOOL)):
            return Route(kind="faq")
        if rules.kind in {"tool", "clarify"} and label in TOOL_INTENTS and label != rules.tool and (
                confidence >= SURE_OF_TOOL):  # "before I benchmark anything, which devices are there?"
            return tool_route(question, self.catalog, label)
        if rules.kind == "faq" and label in TOOL_INTENTS and confidence >= OVERRULE_FAQ:
            return tool_route(question, self.catalog, label)
        if rules.kind == "faq" and label == "aggregate" and confidence >= OVERRULE_TOOL:
            # a question over the table the patterns missed, when its filters can be read
            filters = aggregate_filters(question, self.catalog)
            if filters:
                return Route(kind="aggregate", filters=filters)
        if (rules.kind in {"catalog", "faq"} and asked_attribute(question) is None and prediction.unheld >= 0.5
                and prediction.p("out_of_scope") > prediction.p("catalog")):
            # a catalog model asked about what the table does not hold (its license, accuracy, training)
            named = rules.entries or tuple(m.entry for m in self.catalog.named_matches(question)[:1])
            if named:
                return Route(kind="not_held", entries=named)
        return rules

    def _intent_route(self, question: str, prediction: Prediction) -> Route:
        """The route of a message in another language: the intent and asked field from the classifier, the
        arguments (model names, numbers, settings) from the rules and the catalog matcher."""
        label = prediction.label
        if label in TOOL_INTENTS:
            # a run is an action: taken when the classifier is sure, otherwise the FAQ answers
            sure = prediction.confidence >= SURE_OF_TOOL_ALONE
            if not sure and label != "system_info" and prediction.confidence >= SURE_OF_TOOL_WITH_SETTINGS:
                # settings given as numbers ("用10次迭代") make a run request of a likely one
                sure = bool(self._stated_settings(question, label))
            return tool_route(question, self.catalog, label) if sure else Route(kind="faq")
        if label in {"catalog", "out_of_scope"} and prediction.attribute is None and prediction.unheld >= 0.5:
            named = self.catalog.named_matches(question)  # a catalog model asked what the table does not hold
            if named:
                return Route(kind="not_held", entries=(named[0].entry,))
        if label == "catalog":
            named = self.catalog.named_matches(question)
            if named:
                top = named[0].weight
                entries = tuple(dict.fromkeys(m.entry for m in named if abs(m.weight - top) < 1e-6
                                              or m.score == 1.0))
                return Route(kind="catalog", entries=entries, attribute=prediction.attribute)
        if label == "aggregate":
            return Route(kind="aggregate", filters=aggregate_filters(question, self.catalog))
        return Route(kind="faq")

    def _catalog_answer(self, question: str, decision: Route, answer: Answer, started: float) -> Iterator[Event]:
        if decision.kind == "aggregate":
            result = answer_aggregate(asked_clause(question), self.catalog, decision.filters)
        elif decision.kind == "unlisted":  # nothing in the sources answers it: say so, invent nothing
            result = answer_unlisted(decision.mention, list(decision.entries), decision.attribute, self.catalog)
            answer.refused = True
        elif decision.kind == "not_held":  # a catalog model, asked what the catalog does not hold
            if answer.language != "en":
                yield _refusal(answer, started)
                return
            result = answer_not_held(list(decision.entries))
            answer.refused = True
        else:
            result = answer_about(list(decision.entries), decision.attribute)
        sources = self._catalog_sources(question, result, aggregate=result.aggregate)
        answer.sources = sources
        yield SourcesEvent(sources)
        text = _localised_catalog(result, decision, answer.language) or result.text
        text = f"{text} [1]" if sources else text
        answer.answer = text
        answer.timings_ms["first_token"] = (time.perf_counter() - started) * 1000
        yield TokenEvent(text)

    def _catalog_sources(self, question: str, result: CatalogAnswer, *, aggregate: bool) -> list[Source]:
        """The rows the answer was read from (exact), or for an aggregate the table (exact) and the FAQ passage
        that introduces it; then the context by similarity. Best first, at most top_k beyond the rows."""
        rows = [self.chunks[e.chunk_id] for e in result.entries if e.chunk_id in self.chunks]
        table_ids = dict.fromkeys(r.meta.get("table") for r in rows)
        tables = [self.chunks[t] for t in table_ids if t in self.chunks]
        if not tables:
            tables = [c for c in self.chunks.values() if c.kind == "table"][:1]
        # an aggregate also cites the FAQ passage that introduces the table ("the list of input sizes for each
        # network model"), where the question over the whole table is answered in words. Its rows are in the
        # table and in the answer's list, so they are cited one by one only when the answer reads their links,
        # which the table's text does not show.
        intros = [c for c in self.chunks.values()
                  if c.kind == "faq" and any(t.title.startswith(c.title) for t in tables)]
        reads_links = "link" in result.filters or any(e.url and e.url in result.text for e in result.entries)
        exact, context = ((tables + rows if reads_links else tables, intros[:1]) if aggregate
                          else (rows, tables))
        similarities = self.retriever.similarities(question, [c.id for c in context])
        scored = sorted(zip(context, similarities, strict=True), key=lambda pair: -pair[1])
        cap = max(self.settings.top_k, len(exact))
        return ([Source(id=c.id, title=c.title, text=c.text, score=1.0, file=c.source, match="exact")
                 for c in exact]
                + [Source(id=c.id, title=c.title, text=c.text, score=score, file=c.source)
                   for c, score in scored])[:cap]

    def _faq_answer(self, question: str, history: Sequence[dict[str, str]], answer: Answer, started: float,
                    prediction: Prediction | None = None) -> Iterator[Event]:
        query = question
        if history and len(question.split()) <= 6:
            previous = next((t["content"] for t in reversed(history) if t.get("role") == "user"), "")
            query = f"{previous} {question}".strip()
        sources, best, retrieval_ms = self.sources_for(query)
        answer.timings_ms["retrieval"] = retrieval_ms
        top_is_row = bool(sources) and self.chunks[sources[0].id].kind == "row"
        mention = model_like_name(question)
        # a model-like name the knowledge never mentions ("EfficientNet-B7"), or a table row of another model
        # as the closest text: the asked model is not in the catalog
        foreign = bool(mention) and not self.catalog.match(mention) and not all(
            part in self.relevance.words for part in re.findall(r"[a-z0-9]+", mention.lower())
            if len(part) > 2 or any(c.isdigit() for c in part))  # "INT8-vs-FP32": a connector names nothing
        other_row = top_is_row and not self._names_row(question, sources[0])
        attribute = asked_attribute(question)
        if attribute and mention and (foreign or other_row):
            answer.route = "unlisted"
            yield from self._catalog_answer(question, Route(kind="unlisted", attribute=attribute, mention=mention),
                                            answer, started)
            return
        asked = asked_clause(question)
        sure_faq = prediction is not None and prediction.p("faq") >= SURE_OF_FAQ
        likely_faq = prediction is not None and prediction.label == "faq" and prediction.p("faq") >= LIKELY_FAQ
        if not sure_faq and (self.relevance.asks_unknown_value(asked) or self.relevance.asks_release_date(question)
                             or self.relevance.asks_figure(question)):
            # the word rules for values the FAQ cannot hold yield to the intent learned from the corpus when it
            # is sure ("does the reported latency cover pre-processing?" asks how, not a figure)
            yield _refusal(answer, started)
            return
        if not self.relevance.in_scope(f"{question} {faq_words(question)}", [s.text for s in sources], best,
                                       asked=f"{asked} {faq_words(asked)}" if asked != question else ""):
            # The words are too far from the passages' for the gate, but the intent learned from the corpus takes
            # it for an FAQ question (and no word rule found it asking for what the FAQ cannot hold): the passage
            # its labelled neighbours were answered by answers it.
            sources = self._bank_sources(question) if likely_faq else []
            if not sources:
                yield _refusal(answer, started)
                return
            best = sources[0].score
        cited = _prose_first(_worth_citing(sources, best), self.chunks)
        if self.chunks[cited[0].id].kind in {"row", "table"} and not self._names_row(question, cited[0]):
            # answered by the FAQ's prose, not by the table: a row of a model the question does not name
            # would be a wrong answer, and a whole table is no sentence to quote
            prose = next((s for s in sources if self.chunks[s.id].kind not in {"row", "table"}), None)
            if prose is None:
                yield _refusal(answer, started)
                return
            cited = [prose, *[s for s in cited if s.id != prose.id]]
        elif self.chunks[cited[0].id].kind not in {"row", "table"}:
            cited = self._bank_led(question, cited)
        # The direct answer and the verbatim evidence stream first (fast, always correct); the model's
        # sentence follows only when the sources support it and it passes the prose checks.
        basis = cited[0]
        links = self.chunks[basis.id].meta.get("links", {})
        span, best_sentence = self._quote(question, basis)
        quote = _with_links(span, links)
        opening = _opening(asked, best_sentence if best_sentence != span else "", links)
        # a message of several questions gets each answered, with its own source
        parts = question_parts(question)
        quoted = {basis.id}
        part_quotes: list[tuple[str, Source, str]] = []
        for part in parts if parts != [question] else []:
            extra = self._part_answer(part, quoted)
            if extra is not None:
                source, part_quote = extra
                quoted.add(source.id)
                part_quotes.append((part, source, part_quote))
                if all(s.id != source.id for s in cited):
                    cited.append(source)
        cited = _quoted_first(cited, quoted=[basis.id, *(source.id for _, source, _ in part_quotes)],
                              cap=self.settings.top_k)
        number = {s.id: i for i, s in enumerate(cited, 1)}
        text = opening + self._quote_block(basis, quote, number[basis.id])
        for part, source, part_quote in part_quotes:
            text += f"\n\n{part.rstrip('?')}? " + self._quote_block(source, part_quote, number[source.id])
        answer.sources = cited
        yield SourcesEvent(cited)
        answer.timings_ms["first_token"] = (time.perf_counter() - started) * 1000
        yield TokenEvent(text)
        if not self.settings.llm_summary:  # the quotes are the answer; no model is loaded for it
            answer.answer = text
            return
        t0 = time.perf_counter()
        try:
            generation = self.llm().generate(build_messages(question, basis), on_token=RepetitionWatch(),
                                             max_new_tokens=self.settings.max_new_tokens, stop=["\n"])
        except Repeating:  # the sentence could no longer pass the prose checks: the quotes are the answer
            generation = None
        answer.timings_ms["generation"] = (time.perf_counter() - t0) * 1000
        if generation is None:
            answer.answer = text
            return
        answer.usage = {"prompt_tokens": generation.input_tokens, "completion_tokens": generation.output_tokens}
        # the model saw one source, [1]: its citation is the basis's number in this answer
        lead = ensure_citation(generation.text.strip(), 1).replace("[1]", f"[{number[basis.id]}]")
        if (is_supported(lead, [basis], question) and not _same_words(lead, span)
                and not prose_problems(lead, source=basis.text, quote=span)
                and not repeated_phrase(f"{text} {lead}", words=4, times=3)):  # it would say a third time
            addition = f"\n\nIn short: {lead}"
            text += addition
            yield TokenEvent(addition)
        answer.answer = text

    def _quote_block(self, source: Source, quote: str, number: int) -> str:
        """'The FAQ says, under "its question" [n]:' and the quote; the FAQ's own question says what it answers."""
        heading = f', under "{source.title}"' if self.chunks[source.id].kind == "faq" else ""
        return f"{speaker(self.chunks[source.id])} says{heading} [{number}]:\n\n> {quote}"

    def _bank_sources(self, question: str) -> list[Source]:
        """FAQ passages by the multilingual search with the labelled question bank (best first), when the best
        is an FAQ passage close enough by its own words to cite."""
        if self.understanding is None:
            return []
        passages = self.understanding.search(question, k=self.settings.top_k)
        if not passages or passages[0].similarity < FOREIGN_MIN_SIMILARITY:  # FAQ entries and sections only
            return []
        return [_passage_source(p) for p in passages if p.score >= passages[0].score - FOREIGN_CITE_MARGIN]

    def _bank_led(self, question: str, cited: list[Source]) -> list[Source]:
        """The FAQ passage that the question's closest labelled questions were answered by leads, when it is
        another than the keyword/embedding ranking's first: on questions worded unlike the FAQ, a question is
        closer in meaning to other questions than to the passage's own words (the same search serves the
        other languages)."""
        if self.understanding is None or not self.understanding.knows(self.chunks[cited[0].id]):
            return cited  # the labelled questions know only the FAQ's passages, not one of an added document
        found = self.understanding.search(question, k=len(self.chunks))
        if not found or found[0].chunk.id == cited[0].id:
            return cited
        ranked_first = next((p for p in found if p.chunk.id == cited[0].id), None)
        if ranked_first is not None and found[0].score - ranked_first.score < BANK_LEADS_BY:
            return cited  # the labelled questions do not clearly prefer another passage
        chunk = found[0].chunk
        listed = next((s for s in cited if s.id == chunk.id), None)
        if listed is None:  # shown with the similarity the other sources show, the English embedder's
            vectors = self.retriever.embedder.encode([question, chunk.text])
            listed = Source(id=chunk.id, title=chunk.title, text=chunk.text, score=float(vectors[1] @ vectors[0]),
                            file=chunk.source)
        return [listed, *(s for s in cited if s.id != chunk.id)]

    def _part_answer(self, part: str, quoted: set[str]) -> tuple[Source, str] | None:
        """The source and quote answering one further question of the message, when a passage not quoted yet
        answers it (it may be among the cited sources already)."""
        sources, best, _ = self.sources_for(part)
        if not sources or sources[0].id in quoted or self.chunks[sources[0].id].kind != "faq":
            return None
        if not self.relevance.in_scope(f"{part} {faq_words(part)}", [s.text for s in sources], best):
            return None
        span, _ = self._quote(part, sources[0])
        return sources[0], _with_links(span, self.chunks[sources[0].id].meta.get("links", {}))

    def _foreign_faq_answer(self, question: str, prediction: Prediction | None, answer: Answer, started: float
                            ) -> Iterator[Event]:
        """An FAQ answer to a question in another language: multilingual search over the FAQ's passages, the
        best sentences quoted in English under a line in the user's language."""
        t0 = time.perf_counter()
        passages = self.understanding.search(question, k=self.settings.top_k)
        answer.timings_ms["retrieval"] = (time.perf_counter() - t0) * 1000
        best = max((p.similarity for p in passages), default=0.0)  # the passage's own words, calibrated
        if (not passages or best < FOREIGN_MIN_SIMILARITY
                or (prediction is not None and prediction.label == "out_of_scope")):
            yield _refusal(answer, started)
            return
        cited = [_passage_source(p) for p in passages if p.score >= passages[0].score - FOREIGN_CITE_MARGIN]
        # a message of several questions ("…? …?") gets each answered from its own passage, the first too when
        # its passage is close enough (the whole message's best may answer a later question)
        parts = _question_marks_split(question)
        if len(parts) == 1:
            parts = _coordinated_split(question)
        first = self.understanding.search(parts[0], k=1) if len(parts) > 1 else []
        if first and first[0].chunk.kind == "faq" and first[0].similarity >= FOREIGN_MIN_SIMILARITY:
            cited = [_passage_source(first[0]), *(s for s in cited if s.id != first[0].chunk.id)]
        answered = [("", cited[0])]
        also_asked: dict[str, list[str]] = {}  # a later ask answered by a passage quoted already
        for part in parts[1:]:
            found = self.understanding.search(part, k=1)
            if not found or found[0].chunk.kind != "faq" or found[0].similarity < FOREIGN_MIN_SIMILARITY:
                continue
            if any(source.id == found[0].chunk.id for _, source in answered):
                also_asked.setdefault(found[0].chunk.id, []).append(part)
                continue
            answered.append((part, _passage_source(found[0])))
            if all(s.id != found[0].chunk.id for s in cited):
                cited.append(answered[-1][1])
        cited = _quoted_first(cited, quoted=[source.id for _, source in answered], cap=self.settings.top_k)
        number = {s.id: i for i, s in enumerate(cited, 1)}
        answer.sources = cited
        yield SourcesEvent(cited)
        blocks = []
        for part, source in answered:
            intro = language.text("faq_in_english", answer.language, title=source.title) or "The FAQ says:"
            asks = [part or question, *also_asked.get(source.id, [])]
            blocks.append(f"{part} {intro} [{number[source.id]}]".strip()
                          + f"\n\n> {self._foreign_quote(asks, source)}")
        answer.answer = "\n\n".join(blocks)
        answer.timings_ms["first_token"] = (time.perf_counter() - started) * 1000
        yield TokenEvent(answer.answer)

    def _foreign_quote(self, asks: Sequence[str], source: Source) -> str:
        """The sentences of a passage that answer the asks (any language), in the passage's order; a short
        passage whole."""
        candidates = sentences(source_body(source)) or [source.text.strip()]
        if _is_short(candidates):
            quote = " ".join(candidates)
        else:
            kept = {i for ask in asks for i in _span_indices(self.understanding.rank(ask, candidates))}
            quote = " ".join(candidates[i] for i in sorted(kept))
        return _with_links(quote, self.chunks[source.id].meta.get("links", {}))

    def _names_row(self, question: str, source: Source) -> bool:
        """The source is the catalog row of a model the question names and asks about (not "what tool
        made your resnet numbers", which the FAQ's prose answers)."""
        entry = next((e for e in self.catalog if e.chunk_id == source.id), None)
        return entry is not None and self._names(question, entry) and (
            asked_attribute(question) is not None or only_about(question, (entry,)))

    def _names(self, question: str, entry: CatalogEntry) -> bool:
        """The question names this catalog entry (not merely a model of its family)."""
        return any(m.entry is entry for m in self.catalog.named_matches(question))

    def _quote(self, question: str, source: Source) -> tuple[str, str]:
        """The source sentences that best answer the question (through the runner-up when that is at most two
        sentences away), and the best sentence itself."""
        candidates = sentences(source_body(source)) or [source.text.strip()]
        if _is_short(candidates):
            whole = " ".join(candidates)  # a short FAQ answer is quoted whole: its point may be any sentence
            return whole, (whole if len(candidates) == 1 else self._best_sentence(question, candidates))
        # The small embedder ranks the sentence that names the passage's topic first ("Latency is measured
        # ...") for "which applications care about latency?", whose answer says "relevant for applications
        # where ...": the question without the topic's words (the passage title's) gets a say too.
        topic = {w[:5] for w in content_words(source.title)}
        rest = " ".join(w for w in re.findall(r"[\w'-]+", question) if w.lower()[:5] not in topic)
        texts = [question, rest] if content_words(rest) else [question]
        embedder = self.retriever.embedder
        asked_vectors, candidate_vectors = embedder.encode(texts), embedder.encode(candidates, keep=True)
        scores = sum(candidate_vectors @ vector for vector in asked_vectors)
        # and the asked words themselves: "does the FAQ give a medical use case?" quotes the medical example
        asked = {w[:5] for w in content_words(rest)}
        if asked:
            scores = scores + QUOTE_WORD_WEIGHT * np.array(
                [len(asked & {w[:5] for w in content_words(c)}) / len(asked) for c in candidates])
        return _span(candidates, scores)

    def _best_sentence(self, question: str, candidates: list[str]) -> str:
        """The candidate closest in meaning to the question."""
        embedder = self.retriever.embedder
        asked = embedder.encode([question])[0]
        return candidates[int(np.argmax(embedder.encode(candidates, keep=True) @ asked))]

    def _tool_answer(self, question: str, decision: Route, tools_mode: str, answer: Answer, started: float,
                     caller: Caller) -> Iterator[Event]:
        # cite what the FAQ says about the method of this measurement, not what the request resembles
        sources, best, retrieval_ms = self.sources_for(_method_query(decision), k=2)
        answer.timings_ms["retrieval"] = retrieval_ms
        sources = _worth_citing(sources, best)[:1]  # the one passage the answer cites as [1]
        answer.sources = sources
        if decision.kind == "clarify":
            answer.answer = decision.message
            yield TokenEvent(decision.message)
            return
        call = ToolCall(name=decision.tool or "", arguments=dict(decision.arguments))
        try:
            call.arguments = self.tools.get(call.name).validate(call.arguments, self.settings)
        except ToolError as error:
            call.status, call.error, call.error_type = "error", str(error), type(error).__name__
            answer.tool_calls.append(call)
            reason = _as_sentence(error.message.removeprefix(f"{call.name}: "))
            answer.answer = f"I cannot run {call.name} with those arguments: {reason}" + (
                f"\n{_as_sentence(error.hint)}" if error.hint else "")
            yield ToolResultEvent(call)
            yield TokenEvent(answer.answer)
            return
        answer.tool_calls.append(call)
        if tools_mode != "run":
            call.status = "planned" if tools_mode == "plan" else "declined"
            yield ToolStartedEvent(call)
            verb = "would run" if tools_mode == "plan" else "cannot run tools here; I would run"
            answer.answer = (f"I {verb} {call.name} with {_format_arguments(call.arguments)}. "
                             + ("Confirm to start it." if tools_mode == "plan" else
                                "Run it locally with the ovperf CLI or the web app."))
            if tools_mode == "plan" and answer.language != "en":
                answer.answer = language.text("plan", answer.language, tool=call.name,
                                              arguments=_format_arguments(call.arguments)) or answer.answer
            answer.timings_ms["first_token"] = (time.perf_counter() - started) * 1000
            yield TokenEvent(answer.answer)
            return
        yield ToolStartedEvent(call)
        events: queue.Queue = queue.Queue()
        result_holder: list[ToolCall] = []

        def work() -> None:
            result_holder.append(self.run_tool(
                call.name, call.arguments, caller=caller,
                progress=lambda fraction, message: events.put(ToolProgressEvent(call.name, fraction, message))))
            events.put(None)

        threading.Thread(target=work, name=f"tool-{call.name}", daemon=True).start()
        while (event := events.get()) is not None:
            yield event
        finished = result_holder[0]
        call.status, call.result, call.error = finished.status, finished.result, finished.error
        call.arguments = finished.arguments
        yield ToolResultEvent(call)
        text = summarize(call, cite=" [1]" if sources else "")
        if header := language.text("result", answer.language):
            text = f"{header}\n\n{text}"
        answer.answer = text
        answer.timings_ms["first_token"] = (time.perf_counter() - started) * 1000
        yield TokenEvent(text)


def _refusal(answer: Answer, started: float) -> TokenEvent:
    """Mark the answer refused (nothing in the knowledge answers the question) and give the refusal text, in
    the question's language."""
    answer.refused = True
    answer.answer = language.text("refusal", answer.language) or REFUSAL
    answer.timings_ms["first_token"] = (time.perf_counter() - started) * 1000
    return TokenEvent(answer.answer)


_YES_NO = re.compile(r"^\s*(?:is|are|does|do|did|can|could|will|would|should|has|have|was|were|may|must)\b", re.I)
_NEGATED = re.compile(r"\b(?:not|no|never|without|cannot)\b|n['’]t\b", re.I)


def _plain_words(text: str) -> set[str]:
    """Content words with hyphenated words split ("open-source" → open, source)."""
    return content_words(re.sub(r"(?<=\w)-(?=\w)", " ", text))


def _opening(asked: str, sentence: str, links: dict[str, str]) -> str:
    """The answer's first line: "Yes." or "No." when the sentence settles a yes/no question (it has every word
    the question asks about; a negation on one side only makes it a no), then the sentence that answers."""
    verdict = ""
    if _YES_NO.search(asked) and sentence:
        asked_words = {w[:5] for w in _plain_words(_YES_NO.sub("", asked))} - {"faq", "openv"}
        said = {w[:5] for w in _plain_words(sentence)}
        if asked_words and asked_words <= said:
            verdict = "No. " if bool(_NEGATED.search(asked)) != bool(_NEGATED.search(sentence)) else "Yes. "
    if not sentence:
        return verdict
    return f"{verdict}{_with_links(sentence, links)} [1]\n\n"


def _localised_catalog(result, decision: Route, lang: str) -> str | None:
    """A catalog answer in the question's language (the values are the table's own), or None for English."""
    if lang == "en" or decision.kind == "unlisted":
        return None
    entries, field = result.entries, decision.attribute
    if result.aggregate or (len(entries) > 1 and not field):
        header = language.text("matches", lang, count=str(len(entries)))
        return "\n".join([header or "", *(f"- {e.model} ({e.task}, {language.field_name('input_size', lang)} "
                                           f"{e.input_size})" for e in entries)])
    every = ["task", "input_size", "network", "url"]
    if len(entries) > 1:  # the asked field of each model, under one header
        return "\n".join([language.text("matches", lang, count=str(len(entries))) or "",
                          *(f"- {e.model} – {language.field_name(field, lang)}: {field_value(e, field)}"
                            for e in entries if field_value(e, field))])
    # the asked field in a sentence; the model's other fields follow, as the English answer gives its whole row
    entry, asked = entries[0], decision.attribute or "task"
    lines = [language.text("field", lang, model=entry.model, field=language.field_name(asked, lang),
                           value=field_value(entry, asked) or "") or ""]
    lines += [f"- {language.field_name(f, lang)}: {value}" for f in every
              if f != asked and (value := field_value(entry, f))]
    return "\n".join(lines)


# a word standing for a model named earlier in the conversation
_REFERENCE = re.compile(r"\b(?:its|it|(?:this|that|the same) (?:model|network|one|workload))\b", re.I)


SHORT_ANSWER_SENTENCES, SHORT_ANSWER_CHARS = 4, 650
# the intent classifier overrules the rules' route only when this sure (see _reconciled)
OVERRULE_TOOL, OVERRULE_FAQ = 0.5, 0.7
UNLIKELY_TOOL = 0.3  # the tool intents together this unlikely: the rules' run request is no request
SURE_OF_TOOL = 0.6  # sure enough of a tool to run it without the rules' agreement
# a run request in another language whose settings the slot filler reads (held out: every such message at
# 0.5-0.6 was a run request; without settings, 8 of 21 were not)
SURE_OF_TOOL_WITH_SETTINGS = 0.5
# a tool from the classifier alone, no rule agreeing (messages in other languages): with each labelled set held
# out, the tools it chose at p >= 0.65 were wrong for 4 messages (0.6: 10, 0.5: 23) and right for 539 (0.6: 563);
# a run request that states its settings passes the bar above
SURE_OF_TOOL_ALONE = 0.65
SURE_OF_FAQ = 0.8  # no out-of-scope question of any labelled set reached this, each set held out of training
# likely enough to answer a question the word gate finds too far from the passages, when no word rule objects:
# with each labelled set held out in turn, 0.6 answered 14 more of 379 English FAQ questions and 1 more of 182
# out-of-scope ones than 0.8
LIKELY_FAQ = 0.6
# the passage learned from the labelled questions replaces the hybrid ranking's first by at least this much score
# (its probability plus its similarity); a near-tie keeps the ranking's choice
BANK_LEADS_BY = 0.1
# multilingual-e5 similarities are compressed (unrelated texts ~0.75): the floor for an FAQ passage
FOREIGN_MIN_SIMILARITY, FOREIGN_CITE_MARGIN = 0.76, 0.02


def _is_short(candidates: list[str]) -> bool:
    """A short FAQ answer, quoted whole (its point may be any sentence)."""
    return len(candidates) == 1 or (len(candidates) <= SHORT_ANSWER_SENTENCES
                                    and sum(map(len, candidates)) <= SHORT_ANSWER_CHARS)


def _span_indices(scores: np.ndarray) -> list[int]:
    """The sentences from the best to the runner-up when they are at most two apart (the evidence often spans
    sentences: "...beyond processors supporting VNNI. The reduced bit width... Therefore, ..."), else the best."""
    ranked = [int(i) for i in np.argsort(-scores)]
    best, runner_up = ranked[0], ranked[1]
    first, last = sorted((best, runner_up))
    return list(range(first, last + 1)) if last - first <= 2 else [best]


def _span(candidates: list[str], scores: np.ndarray) -> tuple[str, str]:
    """The sentences of `_span_indices`, and the best one."""
    return " ".join(candidates[i] for i in _span_indices(scores)), candidates[int(np.argsort(-scores)[0])]


def _with_links(quote: str, links: dict[str, str]) -> str:
    """The quote with the web address after the first mention of each link text ("Hugging Face (https://...)")."""
    for text, url in links.items():
        if text and url not in quote:
            quote = quote.replace(text, f"{text} ({url})", 1)
    return quote


def _worth_citing(sources: list[Source], best: float) -> list[Source]:
    """Sources close enough to the best one to be cited (always at least the top one)."""
    floor = max(CITE_THRESHOLD, best - CITE_MARGIN)
    return [s for s in sources if s.score >= floor] or sources[:1]


def _passage_source(passage: Passage) -> Source:
    """A passage of the multilingual search as a cited source, scored by its own similarity to the question."""
    return Source(id=passage.chunk.id, title=passage.chunk.title, text=passage.chunk.text, score=passage.similarity,
                  file=passage.chunk.source)


def _question_marks_split(text: str) -> list[str]:
    """The questions of a message in any script, split after each question mark ("?" or "？")."""
    return [p.strip() for p in re.split(r"(?<=[?？])\s*", text) if len(p.strip()) > 3] or [text]


# "…, and …" in the languages the assistant answers: a second ask joined to the first in one sentence
_COORDINATED = re.compile(r"[,，、]\s*(?:(?:and|und|et|y|e|ed)\s+|そして|また|还有|以及|并且|另外|그리고\s*)",
                          re.I)


def _coordinated_split(text: str) -> list[str]:
    """A message's two asks joined by a comma and "and" (any of the answered languages), each with at least three
    words or six characters (a clause in Chinese or Japanese); the whole message when there is no such join."""
    found = _COORDINATED.search(text)
    if found is None:
        return [text]
    first, second = text[:found.start()].strip(), text[found.end():].strip()
    long_enough = all(len(p.split()) >= 3 or len(p) >= 6 for p in (first, second))
    return [first, second] if long_enough else [text]


def _quoted_first(sources: list[Source], *, quoted: list[str], cap: int) -> list[Source]:
    """The quoted sources in the order the answer quotes them (its basis is [1]), then the other sources no
    closer to the question than the basis, best first, up to `cap` in all. A passage closer than the basis
    that the ranking (meaning, keywords, the FAQ before added documents) put below it is not listed: the
    answer did not use it, and listing it above its basis would contradict the order."""
    by_id = {s.id: s for s in sources}
    first = [by_id[i] for i in quoted if i in by_id]
    ceiling = first[0].score if first else 1.0
    context = sorted((s for s in sources if s.id not in quoted and s.score <= ceiling), key=lambda s: -s.score)
    return first + context[:max(cap - len(first), 0)]


def _prose_first(sources: list[Source], chunks: dict[str, Chunk], margin: float = 0.1) -> list[Source]:
    """Put an FAQ/section passage first when it is nearly as close as a table row: it answers, a row only names."""
    if not sources or chunks.get(sources[0].id) is None or chunks[sources[0].id].kind not in {"row", "table"}:
        return sources
    prose = next((s for s in sources if chunks.get(s.id) and chunks[s.id].kind in {"faq", "section"}
                  and s.score >= sources[0].score - margin), None)
    return sources if prose is None else [prose, *(s for s in sources if s is not prose)]


def _method_query(decision: Route) -> str:
    """A retrieval query for the FAQ passages that describe how a tool measures."""
    if decision.tool == "benchmark_llm":
        return "llm_bench foundational models LLMs OpenVINO GenAI"
    if decision.tool == "benchmark_diffusion":
        return "diffusers Stable-Diffusion llm_bench OpenVINO GenAI"
    if decision.tool == "system_info":
        return "INT8 VNNI DL Boost AVX-512 CPU low-precision"
    if decision.arguments.get("hint") == "throughput":
        return "benchmark_app conventional network models performance benchmarks"
    return "latency measured synchronous mode benchmark_app"


def _same_words(first: str, second: str) -> bool:
    """The two texts say the same thing word for word (citations and punctuation aside)."""
    return content_words(re.sub(r"\[\d+\]", " ", first)) == content_words(second)


def _as_sentence(text: str) -> str:
    """The text ending as a sentence does (a message may end on a bare value)."""
    text = text.strip()
    return text if text.endswith((".", "!", "?", ":")) else f"{text}."


def _format_arguments(arguments: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in arguments.items()) or "no arguments"


class _Future:
    """A result handed from a worker thread to the caller's thread."""

    def __init__(self) -> None:
        self._done = threading.Event()
        self._value: Any = None
        self._error: BaseException | None = None

    def set(self, value: Any) -> None:
        self._value = value
        self._done.set()

    def fail(self, error: BaseException) -> None:
        self._error = error
        self._done.set()

    def result(self) -> Any:
        self._done.wait()
        if self._error is not None:
            raise self._error
        return self._value


def new_answer_id() -> str:
    """A short random id for answers that arrive without one."""
    return uuid.uuid4().hex[:12]

"""Continuous batching: one generation engine shared by every front end.

`BatchingEngine` owns an `openvino_genai.ContinuousBatchingPipeline` and one scheduler thread. Callers
(any number of threads: CLI, web UI, /api/ask, /v1) submit a templated prompt with their own
`GenerationConfig`; the thread adds waiting requests to the pipeline between steps, runs `step()` (one
forward pass over every running sequence, so a batch of 8 reads the weights once for 8 tokens) and
hands each request its new tokens. Requests join and leave between steps.

Per request, in the scheduler thread: tokens are detokenized by the request's own `TextStreamer`
(UTF-8-safe pieces), stop strings are matched on the text and the request is stopped at the step that
completes one (text that may still become a stop string is held back, so nothing past it is streamed),
and a set `cancel` event stops it at the next step. Pieces travel to the caller's thread through a queue,
so a slow or failing `on_token` callback never holds up the batch.

Stop strings are matched here rather than by the pipeline's sampler: it then cuts tokens, not text, and
sometimes fails with "Cannot remove more tokens than has been generated" (seen with prompt lookup).
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from assistant.errors import GenerationCancelled, ModelError

log = logging.getLogger(__name__)

OnToken = Callable[[str], None]
GIL_WINDOW_S = 0.001
"""Pause of the scheduler thread after each step, so other Python threads get the GIL (see `_loop`)."""


@dataclass(frozen=True, kw_only=True)
class EngineResult:
    """What one request produced, with the times its caller saw."""

    text: str
    input_tokens: int
    output_tokens: int
    first_token_ms: float  # from submission (queueing included) to the first generated token
    total_ms: float
    finish_reason: str  # "stop" (EOS or a stop string), "length" or "cancelled"


@dataclass(eq=False)
class _Request:
    rid: int
    prompt: Any  # token ids, an ov.Tensor of shape [1, n]
    config: Any
    stop: tuple[str, ...]
    cancel: threading.Event | None
    submitted: float = field(default_factory=time.perf_counter)
    events: queue.SimpleQueue = field(default_factory=queue.SimpleQueue)
    handle: Any = None
    streamer: Any = None
    text: str = ""
    emitted: int = 0
    output_tokens: int = 0
    first_token: float | None = None
    abandoned: bool = False  # the caller stopped listening (its on_token raised)

    def wants_cancel(self) -> bool:
        return self.abandoned or (self.cancel is not None and self.cancel.is_set())


class BatchingEngine:
    """Continuous batching over one ContinuousBatchingPipeline; thread-safe `generate()`."""

    def __init__(self, pipeline: Any, *, name: str = "llm") -> None:
        import openvino_genai

        self.pipeline = pipeline
        self.tokenizer = pipeline.get_tokenizer()
        self._genai = openvino_genai
        self._ids = itertools.count()
        self._cond = threading.Condition()
        self._waiting: deque[_Request] = deque()
        self._running: list[_Request] = []
        self._paused = 0  # exclusive() holders: nothing is admitted or stepped meanwhile
        self._closed = False
        self.steps = 0
        self.peak_batch = 0
        self._thread = threading.Thread(target=self._loop, name=f"engine-{name}", daemon=True)
        self._thread.start()

    # -- callers' side --------------------------------------------------------------------------------

    def generate(self, prompt: str, config: Any, *, on_token: OnToken | None = None,
                 stop: Iterable[str] | None = None, cancel: threading.Event | None = None) -> EngineResult:
        """Generate for one templated prompt in the shared batch; stream pieces to `on_token`.

        Raises GenerationCancelled when `cancel` is set before the end, ModelError when the pipeline fails,
        and whatever `on_token` raised (the request is then stopped at the next step)."""
        ids = self.tokenizer.encode(prompt).input_ids  # here, in the caller's thread, not the scheduler's
        request = _Request(next(self._ids), ids, config, tuple(s for s in stop or () if s), cancel)
        with self._cond:
            if self._closed:
                raise ModelError("the generation engine is closed", hint="Restart the assistant.")
            self._waiting.append(request)
            self._cond.notify_all()
        for kind, value in iter(request.events.get, None):
            if kind == "text":
                if on_token is not None:
                    try:
                        on_token(value)
                    except BaseException:
                        request.abandoned = True  # the scheduler stops it at its next step
                        with self._cond:
                            self._cond.notify_all()
                        raise
            elif kind == "error":
                raise value
            else:
                return value
        raise AssertionError("unreachable")  # the event stream always ends in a result or an error

    @contextmanager
    def exclusive(self) -> Iterator[Any]:
        """Hold the pipeline alone (benchmarks: one stream, nothing beside it); yields the pipeline."""
        with self._cond:
            self._paused += 1
            self._cond.wait_for(lambda: not self._running)
        try:
            yield self.pipeline
        finally:
            with self._cond:
                self._paused -= 1
                self._cond.notify_all()

    @property
    def active(self) -> int:
        """Requests running in the batch or waiting to join it."""
        with self._cond:
            return len(self._running) + len(self._waiting)

    def close(self) -> None:
        """Stop the scheduler thread; requests still waiting or running fail with ModelError."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=10)

    # -- scheduler thread -----------------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            with self._cond:
                # while paused, running requests finish but no new one joins
                self._cond.wait_for(lambda: self._closed or self._running or (not self._paused and self._waiting))
                if self._closed:
                    self._fail_all(ModelError("the generation engine was closed", hint="Restart the assistant."))
                    return
                admitted = [] if self._paused else list(self._waiting)
                if admitted:
                    self._waiting.clear()
            for request in admitted:
                self._admit(request)
            self._drop_cancelled()
            if not self._running:
                self._notify_idle()
                continue
            try:
                self.pipeline.step()
            except RuntimeError as exc:
                log.exception("generation step failed")
                self._fail_running(ModelError(f"generation failed: {_last_line(exc)}",
                                              hint="Shorten the conversation or lower max_new_tokens."))
                continue
            self.steps += 1
            self.peak_batch = max(self.peak_batch, len(self._running))
            for request in list(self._running):
                self._collect(request)
            self._notify_idle()
            # step() holds the GIL for the whole forward pass (openvino_genai's binding does not release it):
            # a short sleep between steps lets the server's other threads (retrieval, catalog answers, the
            # event loop) run, up to one switch interval each, instead of waiting for a gap by chance.
            time.sleep(GIL_WINDOW_S)

    def _admit(self, request: _Request) -> None:
        if request.wants_cancel():
            request.events.put(("error", GenerationCancelled("the request was cancelled before it started")))
            request.events.put(None)
            return
        try:
            request.handle = self.pipeline.add_request(request.rid, request.prompt, request.config)
        except RuntimeError as exc:
            request.events.put(("error", ModelError(f"generation failed: {_last_line(exc)}",
                                                    hint="Shorten the conversation or lower max_new_tokens.")))
            request.events.put(None)
            return
        running = self._genai.StreamingStatus.RUNNING

        def piece(text: str) -> Any:
            request.text += text
            return running

        request.streamer = self._genai.TextStreamer(self.tokenizer, piece)
        self._running.append(request)

    def _drop_cancelled(self) -> None:
        for request in [r for r in self._running if r.wants_cancel()]:
            request.handle.cancel()  # freed by the pipeline at its next step
            self._running.remove(request)
            request.events.put(("error", GenerationCancelled("the request was cancelled")))
            request.events.put(None)

    def _collect(self, request: _Request) -> None:
        """Move the request's new tokens to its caller; finish it at EOS, length or a stop string."""
        handle, status = request.handle, self._genai.GenerationStatus
        if handle.can_read():
            for output in handle.read().values():
                ids = list(output.generated_ids)
                if ids:
                    request.first_token = request.first_token or time.perf_counter()
                    request.output_tokens += len(ids)
                    request.streamer.write(ids)
        state = handle.get_status()
        finished = state not in (status.RUNNING,)
        if finished:
            request.streamer.end()  # flushes text held back for an incomplete UTF-8 sequence
        cut = _stop_index(request.text, request.stop)
        if cut is not None and not finished:
            handle.stop()  # a stop string is complete: end it here, as EOS would
            finished = True
        if cut is None:
            cut = len(request.text) if finished else len(request.text) - _held_back(request.text, request.stop)
        if cut > request.emitted:
            request.events.put(("text", request.text[request.emitted:cut]))
            request.emitted = cut
        if not finished:
            return
        self._running.remove(request)
        if state == status.IGNORED:
            request.events.put(("error", ModelError("the prompt does not fit into the model's KV cache",
                                                    hint="Shorten the conversation.")))
        else:
            now = time.perf_counter()
            reason = "length" if request.output_tokens >= request.config.max_new_tokens else "stop"
            request.events.put(("result", EngineResult(
                text=request.text[:cut], input_tokens=int(request.prompt.get_shape()[1]),
                output_tokens=request.output_tokens,
                first_token_ms=((request.first_token or now) - request.submitted) * 1000,
                total_ms=(now - request.submitted) * 1000, finish_reason=reason)))
        request.events.put(None)

    def _notify_idle(self) -> None:
        if self._paused and not self._running:
            with self._cond:
                self._cond.notify_all()

    def _fail_running(self, error: Exception) -> None:
        for request in self._running:
            request.handle.cancel()
            request.events.put(("error", error))
            request.events.put(None)
        self._running.clear()

    def _fail_all(self, error: Exception) -> None:
        self._fail_running(error)
        while self._waiting:
            request = self._waiting.popleft()
            request.events.put(("error", error))
            request.events.put(None)


def _stop_index(text: str, stop: tuple[str, ...]) -> int | None:
    """Where the first complete stop string starts in `text`, or None."""
    found = [i for s in stop if (i := text.find(s)) >= 0]
    return min(found) if found else None


def _held_back(text: str, stop: tuple[str, ...]) -> int:
    """How many characters at the end of `text` could still grow into a stop string."""
    longest = 0
    for s in stop:
        for size in range(min(len(s) - 1, len(text)), longest, -1):
            if s.startswith(text[-size:]):
                longest = size
                break
    return longest


def _last_line(exc: BaseException) -> str:
    lines = [ln for ln in str(exc).strip().splitlines() if ln.strip()]
    return lines[-1][:300] if lines else type(exc).__name__

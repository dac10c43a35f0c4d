"""Continuous batching: one generation engine shared by every front end.

`BatchingEngine` owns an `openvino_genai.ContinuousBatchingPipeline`. Callers (any number of threads: CLI,
web UI, /api/ask, /v1) submit a templated prompt with their own `GenerationConfig`; requests join the
running batch between steps (one forward pass over every running sequence, so a batch of 8 reads the
weights once for 8 tokens) and leave it when they end.

Why two threads and `pipeline.generate()` instead of a plain `step()` loop: the binding's `step()` holds
the GIL for the whole forward pass, so a Python step loop stalled every other thread of the server
(catalog answers took seconds while generation ran), whereas `generate()` releases it and keeps stepping
every request of the pipeline, also those added with `add_request()` while it runs, until all are done.
So the *driver* thread runs the first waiting request through `generate()` (the anchor, streamed through
its streamer) and the *collector* thread adds the other requests while that runs and reads their
handles every few milliseconds. A request added just as `generate()` returns, before any step took it, is
withdrawn and goes first into the next `generate()`.

Per request: tokens are detokenized by its own `TextStreamer` (UTF-8-safe pieces), stop strings are
matched on the text and the request is stopped at the step that completes one (text that may still become
a stop string is held back, so nothing past it is streamed), and a set `cancel` event stops it at the next
step. Pieces travel to the caller's thread through a queue, so a slow or failing `on_token` never holds
up the batch. Stop strings are matched here rather than by the pipeline's sampler: it cuts tokens, not
text, and sometimes fails with "Cannot remove more tokens than has been generated" (seen with prompt lookup).
"""

from __future__ import annotations

import atexit
import itertools
import logging
import queue
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from assistant.errors import GenerationCancelled, ModelError

log = logging.getLogger(__name__)

OnToken = Callable[[str], None]
POLL_S = 0.002
"""How often the collector reads the running requests' new tokens while `generate()` steps them."""


_ENGINES: weakref.WeakSet[BatchingEngine] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    # native generate() still running in a daemon thread at interpreter exit aborts the process
    for engine in list(_ENGINES):
        engine.close()


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
    finished: bool = False

    def wants_cancel(self) -> bool:
        return self.abandoned or (self.cancel is not None and self.cancel.is_set())


class BatchingEngine:
    """Continuous batching over one ContinuousBatchingPipeline; thread-safe `generate()`."""

    def __init__(self, pipeline: Any, *, name: str = "llm") -> None:
        import openvino_genai

        self.pipeline = pipeline
        self.tokenizer = pipeline.get_tokenizer()
        config = pipeline.get_config()  # a prompt-lookup pipeline reports no EOS here: ask the tokenizer too
        self._eos_ids = {i for i in (self.tokenizer.get_eos_token_id(), config.eos_token_id) if i >= 0}
        self._eos_ids |= set(config.stop_token_ids)
        self._genai = openvino_genai
        self._ids = itertools.count()
        self._cond = threading.Condition()
        self._collecting = threading.Lock()  # one thread at a time reads handles and finishes requests
        self._waiting: deque[_Request] = deque()
        self._running: list[_Request] = []  # added with add_request, read through their handles
        self._anchor: _Request | None = None  # the request driving pipeline.generate()
        self._generating = False  # generate() is stepping: add_request() joins its batch
        self._paused = 0  # exclusive() holders: nothing new starts meanwhile
        self._closed = False
        self.steps = 0  # anchor steps seen (an approximation of the pipeline's steps)
        self.peak_batch = 0
        self._threads = [threading.Thread(target=self._drive, name=f"engine-{name}", daemon=True),
                         threading.Thread(target=self._collect_loop, name=f"engine-{name}-reader", daemon=True)]
        for thread in self._threads:
            thread.start()
        _ENGINES.add(self)

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
            self._cond.wait_for(lambda: self._idle())
        self._drain()
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
            anchor = self._anchor
            return len(self._running) + len(self._waiting) + (anchor is not None and not anchor.finished)

    def close(self, *, wait: bool = True) -> None:
        """Stop the engine's threads; requests still waiting or running fail with ModelError."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        for thread in self._threads if wait else ():
            if threading.current_thread() is not thread:
                thread.join(timeout=10)

    # -- driver and collector threads ------------------------------------------------------------------

    def _idle(self) -> bool:
        return self._anchor is None and not self._running

    def _drive(self) -> None:
        """Run the first waiting request through generate(), which steps the whole batch without the GIL."""
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._closed or (not self._paused and self._waiting))
                if self._closed:
                    self._fail_all(ModelError("the generation engine was closed", hint="Restart the assistant."))
                    return
                anchor = self._anchor = self._waiting.popleft()
            if anchor.wants_cancel():
                self._finish(anchor, error=GenerationCancelled("the request was cancelled before it started"))
            else:
                self._drain()
                self._run_anchor(anchor)
            with self._cond:
                self._generating = False
                self._anchor = None
            self._requeue_stragglers()
            while self._running:  # stragglers that had started already: step them here (holds the GIL)
                self._step_orphans()
            with self._cond:
                self._cond.notify_all()

    def _requeue_stragglers(self) -> None:
        """Requests the collector added just as generate() returned, before any step took them: withdraw them
        and put them first in line for the next generate() (stepping them here would hold the GIL)."""
        with self._collecting:
            self._read_running()
            fresh = [r for r in self._running if r.output_tokens == 0 and not r.text]
            for request in fresh:
                request.handle.cancel()
                request.handle, request.streamer = None, None
                request.rid = next(self._ids)
                self._running.remove(request)
        if fresh:
            with self._cond:
                self._waiting.extendleft(reversed(fresh))
                self._cond.notify_all()

    def _drain(self) -> None:
        """Step until the pipeline has dropped every cancelled request (generate() refuses to start before)."""
        with self._collecting:
            while self.pipeline.has_non_finished_requests():
                self.pipeline.step()

    def _run_anchor(self, anchor: _Request) -> None:
        genai, engine = self._genai, self

        class AnchorStreamer(genai.StreamerBase):
            def write(self, token: int | list[int]) -> Any:
                return engine._anchor_tokens(anchor, token if isinstance(token, list) else [token])

            def end(self) -> None:
                pass

        anchor.streamer = self._text_streamer(anchor)
        try:
            self.pipeline.generate([anchor.prompt], [anchor.config], AnchorStreamer())
        except RuntimeError as exc:
            log.exception("generation failed")
            error = ModelError(f"generation failed: {_last_line(exc)}",
                               hint="Shorten the conversation or lower max_new_tokens.")
            with self._collecting:
                self._fail_running(error)
            if not anchor.finished:
                self._finish(anchor, error=error)
            return
        if not anchor.finished:  # EOS or max_new_tokens
            anchor.streamer.end()
            self._emit(anchor, final=True)
            self._finish(anchor)

    def _anchor_tokens(self, anchor: _Request, ids: list[int]) -> Any:
        """The anchor's new tokens (called by generate() after a step, with the GIL)."""
        status = self._genai.StreamingStatus
        if self._closed:
            return status.CANCEL
        if not self._generating:
            with self._cond:
                self._generating = True  # from now on add_request() joins this generate() call
                self._cond.notify_all()
        self.steps += 1
        if anchor.finished:
            return status.STOP
        if anchor.wants_cancel():
            self._finish(anchor, error=GenerationCancelled("the request was cancelled"))
            return status.CANCEL
        anchor.first_token = anchor.first_token or time.perf_counter()
        anchor.output_tokens += len(ids)
        anchor.streamer.write(ids)
        # generate() returns only when the whole batch is done, so the anchor's own end (EOS, length) is
        # recognised here; otherwise its caller would wait for everyone who joined after it
        ended = anchor.output_tokens >= anchor.config.max_new_tokens or (
            not anchor.config.ignore_eos and not self._eos_ids.isdisjoint(ids))
        if ended:
            anchor.streamer.end()
        if self._emit(anchor, final=ended) or ended:
            self._finish(anchor)
            return status.STOP
        return status.RUNNING

    def _collect_loop(self) -> None:
        """While generate() runs: add waiting requests to its batch and read every running request's tokens."""
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._closed or (self._generating and (self._waiting or self._running)))
                if self._closed:
                    with self._collecting:  # so that a running generate() ends soon
                        self._fail_running(ModelError("the generation engine was closed",
                                                      hint="Restart the assistant."))
                    return
                admitted = [] if self._paused else list(self._waiting)
                if admitted:
                    self._waiting.clear()
            with self._collecting:
                for request in admitted:
                    self._admit(request)
                self._read_running()
            self.peak_batch = max(self.peak_batch, len(self._running) + (self._anchor is not None))
            time.sleep(POLL_S)

    def _step_orphans(self) -> None:
        with self._collecting:
            try:
                self.pipeline.step()
            except RuntimeError as exc:
                self._fail_running(ModelError(f"generation failed: {_last_line(exc)}",
                                              hint="Shorten the conversation or lower max_new_tokens."))
                return
            self._read_running()

    def _text_streamer(self, request: _Request) -> Any:
        running = self._genai.StreamingStatus.RUNNING

        def piece(text: str) -> Any:
            request.text += text
            return running

        return self._genai.TextStreamer(self.tokenizer, piece)

    def _admit(self, request: _Request) -> None:
        if request.wants_cancel():
            self._finish(request, error=GenerationCancelled("the request was cancelled before it started"))
            return
        try:
            request.handle = self.pipeline.add_request(request.rid, request.prompt, request.config)
        except RuntimeError as exc:
            self._finish(request, error=ModelError(f"generation failed: {_last_line(exc)}",
                                                   hint="Shorten the conversation or lower max_new_tokens."))
            return
        request.streamer = self._text_streamer(request)
        self._running.append(request)

    def _read_running(self) -> None:
        """Cancel, read and finish the requests added with add_request (holding `_collecting`)."""
        status = self._genai.GenerationStatus
        for request in list(self._running):
            handle = request.handle
            if request.wants_cancel():
                handle.cancel()  # freed by the pipeline at its next step
                self._running.remove(request)
                self._finish(request, error=GenerationCancelled("the request was cancelled"))
                continue
            while handle.can_read():
                for output in handle.read().values():
                    ids = list(output.generated_ids)
                    if ids:
                        request.first_token = request.first_token or time.perf_counter()
                        request.output_tokens += len(ids)
                        request.streamer.write(ids)
            state = handle.get_status()
            finished = state != status.RUNNING
            if finished:
                request.streamer.end()  # flushes text held back for an incomplete UTF-8 sequence
            if self._emit(request, final=finished) and not finished:
                handle.stop()  # a stop string is complete: end it here, as EOS would
                finished = True
            if not finished:
                continue
            self._running.remove(request)
            if state == status.IGNORED:
                self._finish(request, error=ModelError("the prompt does not fit into the model's KV cache",
                                                       hint="Shorten the conversation."))
            else:
                self._finish(request)

    def _emit(self, request: _Request, *, final: bool) -> bool:
        """Send the text that is safe to show; True when a stop string is complete (the text ends before it)."""
        cut = _stop_index(request.text, request.stop)
        stopped = cut is not None
        if cut is None:
            cut = len(request.text) if final else len(request.text) - _held_back(request.text, request.stop)
        if cut > request.emitted:
            request.events.put(("text", request.text[request.emitted:cut]))
            request.emitted = cut
        if stopped:
            request.text = request.text[:cut]
        return stopped

    def _finish(self, request: _Request, *, error: Exception | None = None) -> None:
        if request.finished:
            return
        request.finished = True
        if error is not None:
            request.events.put(("error", error))
        else:
            now = time.perf_counter()
            reason = "length" if request.output_tokens >= request.config.max_new_tokens else "stop"
            request.events.put(("result", EngineResult(
                text=request.text[:request.emitted], input_tokens=int(request.prompt.get_shape()[1]),
                output_tokens=request.output_tokens,
                first_token_ms=((request.first_token or now) - request.submitted) * 1000,
                total_ms=(now - request.submitted) * 1000, finish_reason=reason)))
        request.events.put(None)

    def _fail_running(self, error: Exception) -> None:
        for request in self._running:
            request.handle.cancel()
            self._finish(request, error=error)
        self._running.clear()

    def _fail_all(self, error: Exception) -> None:
        with self._collecting:
            self._fail_running(error)
        while self._waiting:
            self._finish(self._waiting.popleft(), error=error)


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

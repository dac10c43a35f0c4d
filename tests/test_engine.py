"""The continuous-batching engine with the real default model: concurrent requests share one batch, each with
its own answer, stop strings, stream and cancellation."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from assistant.answer import Source
from assistant.config import Settings
from assistant.engine import _held_back, _stop_index
from assistant.errors import GenerationCancelled
from assistant.grounding import build_messages
from assistant.llm import OpenVINOLLM, cancel_scope
from assistant.models import resolve_llm_path

STORY = [{"role": "user", "content": "Write a long story about a benchmark that never ends."}]


@pytest.fixture(scope="module")
def llm() -> OpenVINOLLM:
    """The default model as the assistant loads it (prompt lookup on), with the IR cache of a normal start."""
    settings = Settings(auto_pull=True)
    return OpenVINOLLM(resolve_llm_path(settings), cache_dir=settings.ov_cache_dir, huge_pages=False)


def _faq_prompts(faq_documents, count: int) -> list[list[dict[str, str]]]:
    """The assistant's own FAQ-answer prompts for `count` FAQ passages (their questions asked as written)."""
    chunks = [c for doc in faq_documents for c in doc.chunks if c.kind == "faq"][:count]
    return [build_messages(c.title, Source(id=c.id, title=c.title, text=c.text, score=1.0)) for c in chunks]


# -- stop strings (pure text logic) -------------------------------------------------------------------

def test_stop_strings_are_found_and_their_beginnings_held_back():
    assert _stop_index("one. two\nthree", ("\n",)) == 8
    assert _stop_index("abc", ("x", "y")) is None
    assert _stop_index("a END b STOP", ("STOP", "END")) == 2  # the first in the text wins
    assert _held_back("the answer is E", ("END",)) == 1
    assert _held_back("the answer is EN", ("END", "ENOUGH")) == 2
    assert _held_back("the answer", ("END",)) == 0
    assert _held_back("x\n", ("\n\n",)) == 1


# -- the real model -------------------------------------------------------------------------------

@pytest.mark.model
def test_concurrent_and_repeated_greedy_answers_equal_the_single_user_answers(llm, faq_documents):
    # Eight FAQ answers of the assistant's full length: at this size, decoding in batches of another
    # size changed 2-4 of 16 answers while the KV cache grew on demand (see GGUF_PROPERTIES).
    prompts = _faq_prompts(faq_documents, 8)
    settings = {"max_new_tokens": 96, "stop": ["\n"]}
    alone = [llm.generate(p, **settings).text for p in prompts]
    peak_before = llm.engine.peak_batch
    llm.engine.peak_batch = 0
    start = threading.Barrier(len(prompts))

    def ask(prompt):
        start.wait()
        return llm.generate(prompt, **settings).text

    with ThreadPoolExecutor(len(prompts)) as pool:
        together = list(pool.map(ask, prompts))
    assert llm.engine.peak_batch >= 4, "the requests did not share a batch"
    llm.engine.peak_batch = max(peak_before, llm.engine.peak_batch)
    assert all(alone) and together == alone
    # asked again alone: the prompt now comes from the prefix cache, the answer must not change
    assert [llm.generate(p, **settings).text for p in prompts[:3]] == alone[:3]


@pytest.mark.model
def test_each_request_keeps_its_own_settings_and_stream(llm):
    short = [{"role": "user", "content": "Name three colours."}]
    expected_short = llm.generate(short, max_new_tokens=6).text
    pieces: list[str] = []
    with ThreadPoolExecutor(2) as pool:
        long_run = pool.submit(llm.generate, STORY, max_new_tokens=40, on_token=pieces.append)
        short_run = pool.submit(llm.generate, short, max_new_tokens=6)
        long, brief = long_run.result(), short_run.result()
    assert brief.text == expected_short and brief.output_tokens <= 6
    assert long.output_tokens == 40 and "".join(pieces) == long.text and len(pieces) > 5


@pytest.mark.model
def test_a_stop_string_never_reaches_the_stream(llm):
    free = llm.generate(STORY, max_new_tokens=40).text
    words = free.split()
    stop = f"{words[len(words) // 2]} {words[len(words) // 2 + 1]}"  # two words: split across steps
    pieces: list[str] = []
    stopped = llm.generate(STORY, max_new_tokens=40, stop=[stop], on_token=pieces.append)
    assert stop not in "".join(pieces) and "".join(pieces) == stopped.text
    assert stopped.text == free[: free.index(stop)]
    assert stopped.output_tokens < 40


@pytest.mark.model
def test_a_cancelled_request_stops_at_the_next_step_and_its_neighbour_is_unaffected(llm):
    neighbour = [{"role": "user", "content": "What is a CPU? Answer in one sentence."}]
    expected = llm.generate(neighbour, max_new_tokens=24).text
    cancel, first_piece = threading.Event(), threading.Event()
    with ThreadPoolExecutor(2) as pool:
        doomed = pool.submit(llm.generate, STORY, max_new_tokens=1000, cancel=cancel,
                             on_token=lambda piece: first_piece.set())
        other = pool.submit(llm.generate, neighbour, max_new_tokens=24)
        assert first_piece.wait(60)
        cancel.set()
        cancelled_at = time.monotonic()
        with pytest.raises(GenerationCancelled):
            doomed.result(timeout=30)
        stopped_after = time.monotonic() - cancelled_at
        assert other.result(timeout=60).text == expected
    assert stopped_after < 1.0, f"the cancelled request ran {stopped_after:.2f} s on"
    _wait_idle(llm)


def _wait_idle(llm: OpenVINOLLM) -> None:
    deadline = time.monotonic() + 5
    while llm.engine.active and time.monotonic() < deadline:
        time.sleep(0.01)
    assert llm.engine.active == 0


@pytest.mark.model
def test_cancel_scope_reaches_generations_started_inside_it(llm):
    cancel = threading.Event()
    cancel.set()
    with cancel_scope(cancel), pytest.raises(GenerationCancelled):
        llm.generate(STORY, max_new_tokens=200)
    assert llm.generate(STORY, max_new_tokens=2).output_tokens == 2  # outside the scope: unaffected


@pytest.mark.model
def test_a_failing_callback_stops_only_its_own_request(llm):
    def explode(piece: str) -> None:
        raise RuntimeError("callback failed")

    with ThreadPoolExecutor(2) as pool:
        bad = pool.submit(llm.generate, STORY, max_new_tokens=500, on_token=explode)
        good = pool.submit(llm.generate, STORY, max_new_tokens=12)
        with pytest.raises(RuntimeError, match="callback failed"):
            bad.result(timeout=60)
        assert good.result(timeout=60).output_tokens == 12
    _wait_idle(llm)


@pytest.mark.model
def test_exclusive_use_waits_for_the_batch_and_holds_new_requests(llm):
    ids = llm.tokenize("Count from one to twenty:")
    config = llm.generation_config(8)
    with ThreadPoolExecutor(2) as pool:
        running = pool.submit(llm.generate, STORY, max_new_tokens=30)
        time.sleep(0.2)
        with llm.engine.exclusive():
            assert running.result(timeout=5).output_tokens == 30  # the running request finished first
            held = pool.submit(llm.generate, STORY, max_new_tokens=2)
            time.sleep(0.3)
            assert not held.done()  # waits until the pipeline is shared again
        assert held.result(timeout=60).output_tokens == 2
    result = llm.generate_ids(ids, config)
    assert len(result.m_generation_ids[0]) == 8 and result.perf_metrics.get_num_input_tokens() == len(ids)

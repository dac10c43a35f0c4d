"""The web UI and the widget in a real browser (Debian's headless chromium driven by Playwright):
chat with sources, a confirmed benchmark, the Benchmarks form and history, the demo page widget.
Requests to anything but the loopback server are blocked and must not happen (offline UI).
Screenshots go to tests/artifacts/ (gitignored)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from live_server import LiveServer, web_settings

from assistant.server import create_app

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "artifacts"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.model,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium "
                                                     "(apt-get install chromium)"),
]
playwright_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright Python package")

RECORD_TEXTS = """() => {
  window.__texts = [];
  const target = document.querySelector('#chatbot');
  new MutationObserver(() => window.__texts.push(target.innerText)).observe(
    target, {subtree: true, childList: true, characterData: true});
}"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = web_settings(tmp_path_factory.mktemp("browser"))
    with LiveServer(create_app(settings, preload_model=True), start_timeout=180) as live:
        yield live


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with playwright_api.sync_playwright() as p:
        instance = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield instance
        instance.close()


@pytest.fixture
def page(browser, server: LiveServer) -> Iterator[object]:
    """A page whose requests may only go to the test server; others are recorded and aborted."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.external = []

    def route(request_route) -> None:
        url = request_route.request.url
        if url.startswith(server.url) or url.startswith(("data:", "blob:")):
            request_route.continue_()
        else:
            page.external.append(url)
            request_route.abort()

    page.route("**/*", route)
    page.set_default_timeout(60_000)
    yield page
    context.close()


def _wait_text(locator, text: str, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        content = locator.inner_text()
        if text in content:
            return content
        time.sleep(0.2)
    raise AssertionError(f"{text!r} did not appear; the element shows: {locator.inner_text()[-800:]!r}")


def test_chat_sources_confirmed_benchmark_and_form(page, server: LiveServer) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.goto(f"{server.url}/")
    chat_input = page.locator("#chat-input textarea")
    chat_input.wait_for()
    _wait_text(page.locator("#model-status"), "Model loaded", 180)

    # a FAQ question: the answer arrives after the placeholder, with its sources in an expandable section
    page.evaluate(RECORD_TEXTS)
    chat_input.fill("How is latency measured?")
    chat_input.press("Enter")
    chat = page.locator("#chatbot")
    _wait_text(chat, "Sources (", 120)
    text = chat.inner_text()
    assert "synchronous" in text.lower() and "[1]" in text
    snapshots = page.evaluate("window.__texts")
    assert any("…" in s and "[1]" not in s for s in snapshots), "no intermediate (streaming) state was shown"
    page.get_by_text("Sources (").first.click()
    _wait_text(chat, "score", 10)
    assert "How is Latency measured?" in chat.inner_text()

    # a benchmark request is planned, shown as a card, and runs after Confirm with live progress
    chat_input.fill("Benchmark mobilenet-v2 for 2 seconds")
    chat_input.press("Enter")
    card = page.locator("#tool-card").first
    card.wait_for(state="visible")
    assert "run_benchmark" in card.inner_text() and "mobilenet-v2" in card.inner_text()
    page.evaluate(RECORD_TEXTS)
    page.locator("#tool-confirm").click()
    _wait_text(chat, "Measured mobilenet-v2", 300)
    assert any("Running run_benchmark" in s for s in page.evaluate("window.__texts"))
    assert "median latency" in chat.inner_text()
    page.screenshot(path=str(ARTIFACTS / "ui-chat.png"), full_page=True)

    # the Benchmarks tab: a form generated from the tool schema, then the history table and plots
    page.get_by_role("tab", name="Benchmarks").click()
    page.locator("#bench-run_benchmark-model").locator("input, textarea").first.fill("mobilenet-v2")
    page.locator("#bench-run_benchmark-hint input").click()
    page.get_by_role("option", name="throughput").click()
    seconds = page.locator("#bench-run_benchmark-seconds input[type=number]")
    seconds.fill("2")
    seconds.press("Tab")
    page.locator("#bench-run_benchmark-run").click()
    status = _wait_text(page.locator("#bench-run_benchmark-status"), "Measured", 300)
    assert "throughput hint" in status and "mobilenet-v2" in status
    table = page.locator("#history-table")
    deadline = time.monotonic() + 30
    while table.inner_text().count("mobilenet-v2") < 2 and time.monotonic() < deadline:
        time.sleep(0.3)
    assert table.inner_text().count("mobilenet-v2") >= 2
    page.locator("#history-plot img").wait_for()
    page.screenshot(path=str(ARTIFACTS / "ui-benchmarks.png"), full_page=True)

    page.get_by_role("tab", name="System").click()
    _wait_text(page.locator("#system-summary"), "CPU", 60)
    assert page.external == [], f"the UI tried to load external assets: {page.external}"


def test_demo_page_widget_answers_with_sources(page, server: LiveServer) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.goto(f"{server.url}/demo")
    page.locator("#ovperf-widget .bubble").click()
    box = page.locator("#ovperf-widget textarea")
    box.fill("How is latency measured?")
    box.press("Enter")
    answer = page.locator("#ovperf-widget .msg.bot").last
    _wait_text(answer, "Sources (", 120)
    assert "synchronous" in answer.inner_text().lower()
    answer.locator("summary").click()
    assert "score" in answer.inner_text()
    box.fill("What is the input size of resnet-50?")
    box.press("Enter")
    _wait_text(page.locator("#ovperf-widget .msg.bot").last, "224x224", 60)
    page.screenshot(path=str(ARTIFACTS / "widget-demo.png"))
    assert page.external == []

"""The web UI and the widget in a real browser (Debian's headless chromium driven by Playwright):
chat with sources, a confirmed benchmark, the Benchmarks form and history, the demo page widget.
Requests to anything but the loopback server are blocked and must not happen (offline UI).
Screenshots go to tests/artifacts/ (gitignored)."""

from __future__ import annotations

import json
import time
import urllib.request
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
    _wait_text(chat, "similarity", 10)
    assert "How is Latency measured?" in chat.inner_text()

    # a dismissed plan runs nothing and says so
    chat_input.fill("Benchmark resnet-50 for 2 seconds")
    chat_input.press("Enter")
    card = page.locator("#tool-card")
    card.wait_for(state="visible")
    card.locator("#tool-dismiss").click()
    card.wait_for(state="hidden")
    _wait_text(chat, "Not run: run_benchmark was dismissed.", 10)

    # a benchmark request is planned: one tool card, its Confirm/Dismiss inside it, next to the chat
    chat_input.fill("Benchmark mobilenet-v2 for 2 seconds")
    chat_input.press("Enter")
    card.wait_for(state="visible")
    assert page.locator("[id=tool-card]").count() == 1, "duplicate #tool-card elements"
    assert "run_benchmark" in card.inner_text() and "mobilenet-v2" in card.inner_text()
    for button in ("#tool-confirm", "#tool-dismiss"):
        assert card.locator(button).is_visible(), f"{button} is not inside the tool card"
    chat_box, card_box = chat.bounding_box(), card.bounding_box()
    input_box = page.locator("#chat-input").bounding_box()
    assert chat_box["y"] + chat_box["height"] <= card_box["y"] + 1 and card_box["y"] < input_box["y"], \
        "the tool card is not between the chat and the input"
    page.screenshot(path=str(ARTIFACTS / "ui-tool-card.png"), full_page=True)
    page.evaluate(RECORD_TEXTS)
    card.locator("#tool-confirm").click()
    card.locator("#tool-stop").wait_for(state="visible")
    _wait_text(chat, "Measured mobilenet-v2", 300)
    assert any("Running run_benchmark" in s for s in page.evaluate("window.__texts"))
    # the figures as a table; the exact command only in the folded result card
    results = chat.locator("table").last
    rows = dict(line.split("\t", 1) for line in results.inner_text().splitlines()[1:])
    assert set(rows) >= {"Throughput", "Median latency", "Average latency", "Min latency", "Max latency",
                         "Precision", "Device", "Duration"}, rows
    assert rows["Throughput"].endswith("FPS") and rows["Precision"].startswith("FP32 IR"), rows
    card.wait_for(state="hidden")
    page.screenshot(path=str(ARTIFACTS / "ui-chat.png"), full_page=True)
    assert "-report_folder" not in chat.inner_text()

    # the Benchmarks tab: the model is a dropdown of the workloads the tool's schema lists
    page.get_by_role("tab", name="Benchmarks").click()
    page.locator("#bench-run_benchmark-model input").click()
    options = page.get_by_role("option").all_inner_texts()
    assert [o.strip() for o in options] == _schema_workloads(server), options
    page.get_by_role("option", name="mobilenet-v2").click()
    page.locator("#bench-run_benchmark-hint input").click()
    page.get_by_role("option", name="throughput").click()
    seconds = page.locator("#bench-run_benchmark-seconds input[type=number]")
    seconds.fill("2")
    seconds.press("Tab")
    page.locator("#bench-run_benchmark-run").click()
    status = page.locator("#bench-run_benchmark-status")
    text = _wait_text(status, "Measured", 300)
    assert "throughput hint" in text and "mobilenet-v2" in text
    assert "Median latency" in status.locator("table").inner_text()
    table = page.locator("#history-table")
    deadline = time.monotonic() + 30
    while table.inner_text().count("mobilenet-v2") < 2 and time.monotonic() < deadline:
        time.sleep(0.3)
    assert table.inner_text().count("mobilenet-v2") >= 2
    width = page.viewport_size["width"]
    header = table.locator("th").last.bounding_box()
    assert header["x"] + header["width"] <= width, "the history table is cut off on the right"
    page.locator("#history-plot img").wait_for()
    page.screenshot(path=str(ARTIFACTS / "ui-benchmarks.png"), full_page=True)

    page.get_by_role("tab", name="System").click()
    summary = _wait_text(page.locator("#system-summary"), "CPU", 60)
    assert "ISA:" in summary and "DL Boost" not in summary  # features named as the CPU reports them
    page.screenshot(path=str(ARTIFACTS / "ui-system.png"), full_page=True)
    assert page.external == [], f"the UI tried to load external assets: {page.external}"


def _schema_workloads(server: LiveServer) -> list[str]:
    """The run_benchmark workloads, as GET /api/tools serves the tool's schema."""
    with urllib.request.urlopen(f"{server.url}/api/tools") as response:
        tools = json.load(response)
    tools = tools.get("tools", tools) if isinstance(tools, dict) else tools
    schema = next(t for t in tools if t["name"] == "run_benchmark")
    return schema["parameters"]["properties"]["model"]["examples"]


HOSTILE = "\n".join([
    "**Bold claim** with [the FAQ](https://docs.openvino.ai/faq) and [a trap](javascript:window.__xss=1)",
    '<img src=x onerror="window.__xss=1"><script>window.__xss=1</script>',
    "> a quote with <b>tags</b>",
    "- first item with **<i>x</i>**",
    "- second item https://example.com/page.",
    "",
    "| Measurement | Value |",
    "|---|---|",
    "| Throughput | <u>9</u> FPS |",
])


def _sse(text: str) -> str:
    chunks = [{"choices": [{"index": 0, "delta": {"content": text[:40]}}]},
              {"choices": [{"index": 0, "delta": {"content": text[40:]}}]},
              {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "sources": []}]
    return "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"


def test_demo_page_widget_renders_markdown_safely(page, server: LiveServer) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.goto(f"{server.url}/demo")
    page.locator("#ovperf-widget .bubble").click()
    box = page.locator("#ovperf-widget textarea")
    box.fill("How is latency measured?")
    box.press("Enter")
    answer = page.locator("#ovperf-widget .msg.bot").last
    _wait_text(answer, "Sources (", 120)
    assert "synchronous" in answer.inner_text().lower()
    # the FAQ's quote is a quote, not "> Latency is ..."
    assert "synchronous mode" in answer.locator("blockquote").first.inner_text()
    assert not any(line.startswith(">") for line in answer.inner_text().splitlines())
    answer.locator("summary").click()
    assert "similarity" in answer.inner_text()
    box.fill("Which models in the catalog are LLMs?")
    box.press("Enter")
    answer = page.locator("#ovperf-widget .msg.bot").last
    answer.locator("li").nth(5).wait_for()
    assert answer.locator("li").count() >= 10 and "DeepSeek" in answer.locator("li").first.inner_text()
    assert "- DeepSeek" not in answer.inner_text()
    page.screenshot(path=str(ARTIFACTS / "widget-demo.png"))

    # a hostile answer: the safe subset renders, nothing in it becomes HTML or a script link
    page.route("**/v1/chat/completions", lambda r: r.fulfill(status=200, body=_sse(HOSTILE),
                                                              headers={"Content-Type": "text/event-stream"}))
    box.fill("anything")
    box.press("Enter")
    answer = page.locator("#ovperf-widget .msg.bot").last
    _wait_text(answer, "second item", 30)
    assert answer.locator("strong").first.inner_text() == "Bold claim"
    link = answer.locator("a[href='https://docs.openvino.ai/faq']")
    assert link.inner_text() == "the FAQ" and link.get_attribute("rel") == "noopener noreferrer nofollow"
    assert answer.locator("a[href='https://example.com/page']").count() == 1  # the full stop is no part of it
    assert answer.locator("a").count() == 2, "the javascript: link became a link"
    assert answer.locator("img, script, b, i, u").count() == 0
    text = answer.inner_text()
    assert '<img src=x onerror="window.__xss=1">' in text and "<b>tags</b>" in text and "a trap" in text
    assert answer.locator("blockquote").inner_text() == "a quote with <b>tags</b>"
    assert answer.locator("li").count() == 2
    assert answer.locator("td").all_inner_texts() == ["Throughput", "<u>9</u> FPS"]
    assert page.evaluate("window.__xss") is None
    page.screenshot(path=str(ARTIFACTS / "widget-hostile.png"))
    assert page.external == []

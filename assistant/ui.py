"""The Gradio web UI (Chat, Benchmarks, System), mounted at / on the server's FastAPI app.

Built only from the Assistant's public API (`stream`, `run_tool`, `tools.schemas()`) and the
benchmark history. Works offline: analytics off, system fonts, no CDN assets.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import gradio as gr
from fastapi import FastAPI

from assistant.answer import DoneEvent, SourcesEvent, TokenEvent, ToolCall, ToolResultEvent, ToolStartedEvent
from assistant.errors import AssistantError
from assistant.history import History
from assistant.portal import key_is_valid
from assistant.runtime import Runtime
from assistant.tool_summary import summarize
from assistant.ui_format import (
    Field,
    arguments_from,
    chat_history,
    form_fields,
    history_figure,
    history_frame,
    history_table,
    planned_text,
    progress_card,
    result_card,
    run_with_progress,
    sources_message,
)

EXAMPLES = (
    "How is latency measured?",
    "What is the input size of resnet-50?",
    "Which models in the catalog are LLMs?",
    "How often are the benchmarks updated?",
    "Benchmark mobilenet-v2 for 5 seconds",
)
THEME = gr.themes.Default(font=["system-ui", "-apple-system", "Segoe UI", "Roboto", "sans-serif"],
                          font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "monospace"])
CSS = """
#model-status { min-height: 1.5em; }
#tool-card { border: 1px solid var(--color-accent); border-radius: 8px; padding: 10px 12px;
             background: var(--background-fill-secondary); }
#tool-card .tool-buttons { gap: 8px; }
#history-table { overflow-x: auto; }
.example-row button { font-size: var(--text-sm); }
"""


class WebUI:
    """Event handlers of the UI, over one shared Runtime."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.assistant = runtime.assistant
        self._cancels: dict[str, threading.Event] = {}
        self._machine: str | None = None

    # -- chat ---------------------------------------------------------------------------------------

    def chat(self, message: str, history: list[dict[str, Any]] | None
             ) -> Iterator[tuple[list[dict[str, Any]], dict[str, Any] | None]]:
        """Stream one answer into the chat: text, then its sources; a planned tool becomes a card."""
        messages = list(history or [])
        question = (message or "").strip()
        if not question:
            yield messages, None
            return
        turns = chat_history(messages)
        messages.append({"role": "user", "content": question})
        waiting = "…" if self.runtime.model_loaded else "… (loading the model; the first answer takes longer)"
        answer_message: dict[str, Any] = {"role": "assistant", "content": waiting}
        messages.append(answer_message)
        yield messages, None
        planned: dict[str, Any] | None = None
        text, sources = "", []
        try:
            for event in self.assistant.stream(question, history=turns, tools="plan"):
                if isinstance(event, SourcesEvent):
                    sources = event.sources
                elif isinstance(event, TokenEvent):
                    text += event.text
                    answer_message["content"] = text
                    yield messages, None
                elif isinstance(event, ToolStartedEvent) and event.call.status == "planned":
                    planned = {"name": event.call.name, "arguments": dict(event.call.arguments)}
                elif isinstance(event, ToolResultEvent) and event.call.status == "error":
                    messages.insert(len(messages) - 1, result_card(event.call, 0.0))
                elif isinstance(event, DoneEvent):
                    answer_message["content"] = event.answer.answer or text
                    sources = event.answer.sources or sources
        except AssistantError as error:
            answer_message["content"] = f"⚠ {error.message}" + (f"\n\n{error.hint}" if error.hint else "")
        except Exception as error:  # shown in the chat, never a traceback
            answer_message["content"] = f"⚠ Unexpected error: {type(error).__name__}: {error}"
        if sources:
            messages.append(sources_message(sources))
        yield messages, planned

    def confirm(self, planned: dict[str, Any] | None, history: list[dict[str, Any]] | None,
                request: gr.Request) -> Iterator[tuple[list[dict[str, Any]], None]]:
        """Run the planned tool call, showing live progress in the chat, then its figures and details."""
        messages = list(history or [])
        if not planned:
            yield messages, None
            return
        for card, call in self._run(planned["name"], planned["arguments"], request):
            if call is None:
                yield [*messages, card], None
            else:
                # the figures take the progress card's place; the details follow, folded (a new card
                # starts closed, the open progress card would stay open)
                yield [*messages, {"role": "assistant", "content": summarize(call)}, card], None

    def dismiss(self, planned: dict[str, Any] | None, history: list[dict[str, Any]] | None
                ) -> tuple[Any, None, list[dict[str, Any]]]:
        """Drop the planned call: hide its card and say in the chat that nothing ran."""
        messages = list(history or [])
        if planned:
            messages.append({"role": "assistant", "content": f"Not run: {planned['name']} was dismissed."})
        return gr.update(visible=False), None, messages

    def stop(self, request: gr.Request) -> None:
        """Ask the running tool of this browser session to stop."""
        if event := self._cancels.get(_session(request)):
            event.set()

    def _run(self, name: str, arguments: dict[str, Any], request: gr.Request | None
             ) -> Iterator[tuple[dict[str, Any], ToolCall | None]]:
        """(progress card, None) while the tool runs, then (result card, the finished call)."""
        cancel = threading.Event()
        self._cancels[_session(request)] = cancel
        started, log, fraction = time.monotonic(), [f"starting {name}…"], 0.0
        try:
            for item in run_with_progress(self.assistant, name, arguments, cancel):
                elapsed = time.monotonic() - started
                if isinstance(item, ToolCall):
                    yield result_card(item, elapsed), item
                    return
                if item is not None:
                    fraction, message = item
                    if message and (not log or log[-1] != message):
                        log.append(message[-160:])
                yield progress_card(name, log, fraction, elapsed), None
        finally:
            self._cancels.pop(_session(request), None)

    # -- benchmarks and system ------------------------------------------------------------------------

    def run_form(self, name: str, fields: list[Field], *values: Any
                 ) -> Iterator[tuple[str, dict[str, Any] | None]]:
        """Run a tool from its form: progress as Markdown, then the summary and the raw result."""
        try:
            arguments = arguments_from(fields, values)
        except (TypeError, ValueError) as error:
            yield f"✖ Invalid input: {error}", None
            return
        for card, call in self._run(name, arguments, None):
            if call is None:
                yield f"**{card['metadata']['title']}**\n\n{card['content']}", None
            else:
                mark = "✔" if call.status == "ok" else "✖"
                yield f"{mark} {summarize(call)}", call.to_dict()

    def history(self) -> tuple[Any, Any]:
        """The history table and the latency/throughput plot."""
        try:
            runs = History(self.runtime.settings.history_db).list(limit=200)
        except AssistantError:
            runs = []
        frame = history_frame(runs)
        return history_table(frame), history_figure(frame, machine=self.machine())

    def system(self) -> tuple[str, dict[str, Any] | None]:
        """This machine, as the system_info tool reports it."""
        call = self.assistant.run_tool("system_info", {})
        if call.status == "ok" and call.result:
            self._machine = _machine_name(call.result)
        return summarize(call), call.result

    def machine(self) -> str:
        """This machine's CPU and core count, for the plot title ("AMD EPYC, 2 cores")."""
        if self._machine is None:
            self.system()
        return self._machine or ""

    def status(self) -> tuple[str, Any]:
        """The model-state banner; stops polling once the model is ready or failed."""
        status = self.runtime.status()
        model = status["model"]
        state = model["state"]
        if state == "ready":
            return "● Model loaded. Ask away.", gr.Timer(active=False)
        if state == "error":
            error = model["error"] or {}
            text = (f"✖ The model could not be loaded: {error.get('message')} {error.get('hint') or ''}\n\n"
                    "Catalog questions and benchmarks still work.")
            return text, gr.Timer(active=False)
        if state == "loading":
            detail = f" — {model['message']}" if model["message"] else ""
            return f"… Loading the model ({model['progress']:.0%}){detail}…", gr.Timer(active=True)
        return "○ The model loads on the first question that needs it.", gr.Timer(active=False)


def _machine_name(info: dict[str, Any]) -> str:
    cpu = info.get("cpu") or {}
    cores = cpu.get("logical_cores")
    return f"{cpu.get('name') or 'this machine'}" + (f", {cores} cores" if cores else "")


def _session(request: gr.Request | None) -> str:
    return getattr(request, "session_hash", None) or "local"


def build_ui(runtime: Runtime) -> gr.Blocks:
    """The Blocks app: Chat, Benchmarks and System tabs."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # gradio reads it at call time
    os.environ.setdefault("MPLBACKEND", "Agg")  # plots are rendered to PNG on the server
    ui = WebUI(runtime)
    with gr.Blocks(title="OpenVINO Performance Assistant", analytics_enabled=False) as blocks:
        gr.Markdown("## OpenVINO Performance Assistant\nCited answers from the OpenVINO Performance "
                    "Information F.A.Q. and live benchmarks on this machine.")
        status = gr.Markdown(ui.status()[0], elem_id="model-status")
        timer = gr.Timer(2.0, active=runtime.model_state == "loading")
        timer.tick(ui.status, None, [status, timer], api_visibility="private", queue=False,
                   show_progress="hidden")
        with gr.Tab("Chat", id="chat"):
            _chat_tab(ui)
        with gr.Tab("Benchmarks", id="benchmarks") as benchmarks:
            history_outputs = _benchmarks_tab(ui)
        benchmarks.select(ui.history, None, history_outputs, api_visibility="private")
        with gr.Tab("System", id="system"):
            system_text = gr.Markdown(elem_id="system-summary")
            system_json = gr.JSON(label="system_info", elem_id="system-json")
            gr.Button("Refresh").click(ui.system, None, [system_text, system_json], api_visibility="private")
        blocks.load(ui.status, None, [status, timer], api_visibility="private", queue=False)
        blocks.load(ui.system, None, [system_text, system_json], api_visibility="private")
        blocks.load(ui.history, None, history_outputs, api_visibility="private")
    blocks.queue(default_concurrency_limit=4, max_size=64)
    return blocks


def _chat_tab(ui: WebUI) -> None:
    chatbot = gr.Chatbot(label="Chat", elem_id="chatbot", height=520, feedback_options=None,
                         buttons=["copy"], placeholder="Ask about OpenVINO benchmark results, or ask me to "
                                                       "benchmark a catalog workload on this machine.")
    planned = gr.State(None)
    # the tool card: what a planned call will run, with its Confirm/Dismiss (and Stop while it runs)
    with gr.Column(visible=False, elem_id="tool-card", variant="panel") as card:
        card_text = gr.Markdown(elem_id="tool-card-text")
        with gr.Row(elem_classes="tool-buttons"):
            confirm = gr.Button("Confirm", variant="primary", elem_id="tool-confirm", scale=0, min_width=120)
            dismiss = gr.Button("Dismiss", elem_id="tool-dismiss", scale=0, min_width=120)
            stop = gr.Button("Stop", variant="stop", visible=False, elem_id="tool-stop", scale=0,
                             min_width=120)
    with gr.Row():
        message = gr.Textbox(show_label=False, placeholder="Ask a question and press Enter", scale=8,
                             elem_id="chat-input", max_lines=6)
        send = gr.Button("Send", variant="primary", scale=1, elem_id="chat-send")
    with gr.Row(elem_classes="example-row"):
        examples = [gr.Button(q, size="sm") for q in EXAMPLES]

    def show_card(call: dict[str, Any] | None) -> tuple[Any, ...]:
        if not call:
            return gr.update(visible=False), "", gr.update(), gr.update(), gr.update()
        return (gr.update(visible=True), planned_text(call), gr.update(visible=True), gr.update(visible=True),
                gr.update(visible=False))

    def running(call: dict[str, Any] | None) -> tuple[Any, ...]:
        text = planned_text(call or {}).replace("on this machine?**", "on this machine: running…**", 1)
        return text, gr.update(visible=False), gr.update(visible=False), gr.update(visible=True)

    card_parts = [card, card_text, confirm, dismiss, stop]
    for trigger in (message.submit, send.click):
        trigger(ui.chat, [message, chatbot], [chatbot, planned], api_name="chat" if trigger == message.submit
                else False, concurrency_limit=4, concurrency_id="chat").then(
            show_card, planned, card_parts, api_visibility="private", queue=False)
        trigger(lambda: "", None, message, api_visibility="private", queue=False)
    for button, question in zip(examples, EXAMPLES, strict=True):
        button.click(lambda q=question: q, None, message, api_visibility="private", queue=False).then(
            ui.chat, [message, chatbot], [chatbot, planned], api_visibility="private",
            concurrency_id="chat").then(
            show_card, planned, card_parts, api_visibility="private", queue=False).then(
            lambda: "", None, message, api_visibility="private", queue=False)
    confirm.click(running, planned, [card_text, confirm, dismiss, stop], api_visibility="private",
                  queue=False).then(
        ui.confirm, [planned, chatbot], [chatbot, planned], api_visibility="private",
        concurrency_limit=1, concurrency_id="tools").then(
        lambda: gr.update(visible=False), None, card, api_visibility="private", queue=False)
    dismiss.click(ui.dismiss, [planned, chatbot], [card, planned, chatbot], api_visibility="private",
                  queue=False)
    stop.click(ui.stop, None, None, api_visibility="private", queue=False)


def _benchmarks_tab(ui: WebUI) -> list[Any]:
    """One form per tool (from its JSON schema), the history table and the plots."""
    runs: list[Any] = []
    for schema in ui.assistant.tools.schemas():
        fields = form_fields(schema.get("parameters") or {})
        if not fields:
            continue
        name = schema["name"]
        with gr.Accordion(name, open=name == "run_benchmark", elem_id=f"bench-{name}"):
            gr.Markdown(schema.get("description", ""))
            inputs = [_component(name, f) for f in fields]
            run = gr.Button("Run", variant="primary", elem_id=f"bench-{name}-run")
            progress = gr.Markdown(elem_id=f"bench-{name}-status")
            with gr.Accordion("Raw result (exact command, all fields)", open=False):
                result = gr.JSON(show_label=False, elem_id=f"bench-{name}-result")

        def runner(*values: Any, _name: str = name, _fields: list[Field] = fields
                   ) -> Iterator[tuple[str, dict[str, Any] | None]]:
            yield from ui.run_form(_name, _fields, *values)

        runs.append(run.click(runner, inputs, [progress, result], api_visibility="private",
                              concurrency_limit=1, concurrency_id="tools"))
    gr.Markdown("### History")
    refresh = gr.Button("Refresh history", size="sm")
    table = gr.Dataframe(label="Benchmark runs (newest first)", interactive=False, elem_id="history-table",
                         wrap=True, max_height=420)
    plot = gr.Plot(show_label=False, format="png", elem_id="history-plot")
    history_outputs = [table, plot]
    refresh.click(ui.history, None, history_outputs, api_visibility="private")
    for event in runs:
        event.then(ui.history, None, history_outputs, api_visibility="private")
    return history_outputs


def _component(tool: str, field: Field) -> Any:
    elem_id = f"bench-{tool}-{field.name}"
    label = field.label + ("" if field.required else " (optional)")
    if field.kind == "dropdown":
        return gr.Dropdown(list(field.choices), value=field.default, label=label, info=field.info,
                           allow_custom_value=field.custom, elem_id=elem_id)
    if field.kind in {"integer", "number"}:
        return gr.Number(value=field.default, label=label, info=field.info, minimum=field.minimum,
                         maximum=field.maximum, precision=0 if field.kind == "integer" else None,
                         elem_id=elem_id)
    if field.kind == "checkbox":
        return gr.Checkbox(value=bool(field.default), label=label, info=field.info, elem_id=elem_id)
    return gr.Textbox(value=field.default, label=label, info=field.info, elem_id=elem_id, max_lines=1)


def mount_ui(app: FastAPI, runtime: Runtime, *, api_keys: tuple[str, ...] = ()) -> FastAPI:
    """Mount the web UI at / (after the API routes, which keep precedence).

    With `api_keys`, the UI asks for a sign-in first: any user name, one of the keys as the password."""
    auth = None
    if api_keys:
        def auth(_user: str, password: str) -> bool:
            return key_is_valid(password, api_keys)
    return gr.mount_gradio_app(app, build_ui(runtime), path="/", theme=THEME, css=CSS, footer_links=[],
                               ssr_mode=False, show_error=True, enable_monitoring=False, auth=auth,
                               auth_message="Sign in with one of this server's API keys as the password "
                                            "(any user name).")

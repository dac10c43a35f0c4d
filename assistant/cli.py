"""`ovperf`: the command line front end (parse input, call the Assistant, format output)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from assistant.config import Settings
from assistant.errors import AssistantError, InvalidQuestion

app = typer.Typer(help="OpenVINO Performance Assistant: cited answers and live benchmarks, locally.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
models_app = typer.Typer(help="List, pull and convert models.", no_args_is_help=True)
app.add_typer(models_app, name="models")
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False)

ModelOpt = Annotated[str | None, typer.Option("--model", help="GGUF file, OpenVINO IR folder or HF id.")]
DeviceOpt = Annotated[str | None, typer.Option("--device", help="CPU, GPU, NPU or AUTO (where the LLM runs).")]
KnowledgeOpt = Annotated[list[Path] | None, typer.Option("--knowledge", help="Folder of .rst/.md to index.")]
EndpointOpt = Annotated[str | None, typer.Option("--llm-endpoint", help="OpenAI-compatible server URL.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
SummaryOpt = Annotated[bool, typer.Option("--summary/--no-summary",
                                          help="Let the LLM add a sentence under FAQ quotes (default on).")]


def _print_version(value: bool) -> None:
    if value:
        from assistant import __version__

        out.print(f"ovperf {__version__}")
        raise typer.Exit()


@app.callback()
def _options(version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                                   help="Print the version and exit.")] = False) -> None:
    """OpenVINO Performance Assistant: cited answers and live benchmarks, locally."""


def settings_from(model: str | None = None, device: str | None = None, knowledge: list[Path] | None = None,
                  llm_endpoint: str | None = None, **extra: Any) -> Settings:
    """Settings from the environment, overridden by command-line flags."""
    overrides = dict(model=model, device=device, llm_endpoint=llm_endpoint, **extra)
    if knowledge:
        overrides["knowledge_dirs"] = tuple(knowledge)
    return Settings.from_env(os.environ, **overrides)


class _ProgressBar:
    """A rich progress bar fed by (fraction, message) callbacks."""

    def __init__(self, description: str) -> None:
        self._progress = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[msg]}"),
                                  TimeElapsedColumn(), console=err, transient=True)
        self._task = self._progress.add_task(description, total=1.0, msg="")

    def __enter__(self) -> _ProgressBar:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def __call__(self, fraction: float, message: str) -> None:
        self._progress.update(self._task, completed=max(0.0, min(fraction, 1.0)), msg=message[-60:])


def _build_assistant(settings: Settings):
    from assistant.core import Assistant

    with _ProgressBar("Loading") as bar:
        bar(0.1, "knowledge and index")
        assistant = Assistant.create(settings, progress=bar)
    return assistant


# -- ask / chat --------------------------------------------------------------------------------------

@app.command()
def ask(
    question: Annotated[str | None, typer.Argument(help="The question.")] = None,
    as_json: JsonOpt = False,
    jsonl: Annotated[str | None, typer.Option("--jsonl", help="File (or - for stdin) of questions.")] = None,
    tools: Annotated[str | None, typer.Option("--tools", help="run, plan (default) or off.")] = None,
    model: ModelOpt = None, device: DeviceOpt = None, knowledge: KnowledgeOpt = None,
    llm_endpoint: EndpointOpt = None,
    top_k: Annotated[int | None, typer.Option("--top-k", help="Sources per answer.")] = None,
    summary: SummaryOpt = True,
) -> None:
    """Answer a question with cited sources (streams; --json for the answer JSON)."""
    settings = settings_from(model, device, knowledge, llm_endpoint, tools_mode=tools, top_k=top_k,
                             llm_summary=None if summary else False)
    if jsonl is not None:
        _ask_many(settings, jsonl)
        return
    if question is None:
        raise InvalidQuestion("no question given", hint='Usage: ovperf ask "How is latency measured?"')
    question = _checked_text(question)
    from assistant.core import clean_question

    clean_question(question, max_chars=settings.max_question_chars)  # fail before loading anything
    assistant = _build_assistant(settings)
    if as_json:
        payload = json.dumps(assistant.ask(question).to_dict(), ensure_ascii=False)
        if sys.stdout.isatty():
            out.print_json(payload)
        else:
            print(payload)
        return
    answer = _print_stream(assistant, question, history=[])
    if answer is not None and any(call.status == "planned" for call in answer.tool_calls):
        err.print("Planned only: add --tools run to run it, or ask in `ovperf chat`, which asks y/N first.",
                  markup=False)


def _checked_text(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidQuestion("the question is not valid UTF-8 text") from exc
    return text


def _print_stream(assistant, question: str, history: list[dict[str, str]]):
    """Stream one answer to the terminal (a finished tool as its table); return the final Answer."""
    from assistant.answer import (
        DoneEvent,
        TokenEvent,
        ToolProgressEvent,
        ToolResultEvent,
        ToolStartedEvent,
    )

    final, finished = None, None
    for event in assistant.stream(question, history=history):
        if isinstance(event, TokenEvent) and finished is None:
            out.print(event.text, end="", markup=False)
        elif isinstance(event, ToolStartedEvent) and event.call.status != "planned":
            err.print(f"[cyan]tool[/] {event.call.name} {json.dumps(event.call.arguments)}")
        elif isinstance(event, ToolProgressEvent):
            err.print(f"[dim]  {event.message[-100:]}[/]", markup=True)
        elif isinstance(event, ToolResultEvent) and event.call.status == "ok":
            finished = event.call
        elif isinstance(event, DoneEvent):
            final = event.answer
    if finished is not None:
        _print_tool_result(finished)
    else:
        out.print()
    if final is not None and final.sources:
        out.print("\n[bold]Sources[/]")
        for i, source in enumerate(final.sources, 1):
            out.print(f"  [{i}] {source.title}  [dim]({source.file}, {source.score_label()})[/]")
    return final


def _print_tool_result(call) -> None:
    """A finished tool call: a benchmark as a table of its figures, other tools as their summary."""
    from assistant.tool_summary import benchmark_heading, benchmark_method, benchmark_rows, summarize

    if call.name != "run_benchmark" or call.status != "ok" or not call.result:
        out.print(summarize(call), markup=False)
        return
    table = Table(title=benchmark_heading(call.result), title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for label, value in benchmark_rows(call.result):
        table.add_row(label, value)
    out.print(table)
    out.print(benchmark_method(call.result), markup=False)
    command = call.result.get("command")
    if command:
        out.print(f"[dim]command: {' '.join(command) if isinstance(command, list) else command}[/]",
                  markup=True, highlight=False)


def _ask_many(settings: Settings, path: str) -> None:
    """One JSON answer per input line; the model is loaded once; a bad line gets an error object."""
    stream = sys.stdin.buffer if path == "-" else _open_binary(path)
    assistant = None
    for number, raw in enumerate(stream, 1):
        line_id: Any = None
        try:
            try:
                line = raw.decode("utf-8").strip()
            except UnicodeDecodeError as exc:
                raise InvalidQuestion(f"line {number} is not valid UTF-8") from exc
            if not line:
                continue
            question = line
            if line.startswith("{"):
                try:
                    item = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InvalidQuestion(f"line {number} is not valid JSON: {exc.msg}") from exc
                except RecursionError as exc:  # json's decoder gives up on very deep nesting
                    raise InvalidQuestion(f"line {number} is not valid JSON: nested too deeply") from exc
                line_id = item.get("id") if isinstance(item, dict) else None
                question = item.get("question") if isinstance(item, dict) else None
            if assistant is None:
                assistant = _build_assistant(settings)
            answer = assistant.ask(question, answer_id=line_id)
            print(json.dumps(answer.to_dict(), ensure_ascii=False), flush=True)
        except AssistantError as error:
            print(json.dumps({"id": line_id, "line": number, **error.to_dict()}, ensure_ascii=False), flush=True)


def _open_binary(path: str):
    try:
        return open(path, "rb")
    except OSError as exc:
        raise AssistantError(f"cannot read {path}: {exc.strerror}") from exc


@app.command()
def chat(model: ModelOpt = None, device: DeviceOpt = None, knowledge: KnowledgeOpt = None,
         tools: Annotated[str | None, typer.Option("--tools", help="run, plan (default) or off.")] = None,
         yes: Annotated[bool, typer.Option("--yes", "-y", help="Run planned tools without asking.")] = False,
         llm_endpoint: EndpointOpt = None) -> None:
    """Interactive multi-turn chat (empty line or Ctrl-D to quit); planned runs ask y/N first."""
    settings = settings_from(model, device, knowledge, llm_endpoint, tools_mode=tools)
    assistant = _build_assistant(settings)
    history: list[dict[str, str]] = []
    out.print("[bold]OpenVINO Performance Assistant[/] — ask about OpenVINO performance benchmarks.")
    while (question := _read_line("\n> ")) is not None and question:
        try:
            answer = _print_stream(assistant, question, history)
            reply = answer.answer if answer else ""
            for call in (answer.tool_calls if answer else []):
                if call.status == "planned" and _confirmed(call, yes):
                    reply = _run_confirmed(assistant, call)
        except AssistantError as error:
            err.print(f"[red]{error}[/]")
            continue
        history += [{"role": "user", "content": question}, {"role": "assistant", "content": reply}]


def _read_line(prompt: str) -> str | None:
    """One stripped input line (echoed when piped in), or None at end of input or Ctrl-C."""
    try:
        line = input(prompt).strip()
    except (EOFError, KeyboardInterrupt):
        return None
    if not sys.stdin.isatty():
        out.print(line, markup=False)
    return line


def _confirmed(call, yes: bool) -> bool:
    """Whether to run a planned call: --yes, or a y/yes answer to the prompt."""
    from assistant.ui_format import format_arguments

    if yes:
        out.print(f"Running {call.name} ({format_arguments(call.arguments)}): --yes given.")
        return True
    reply = _read_line(f"Run {call.name} with {format_arguments(call.arguments)} now? [y/N] ")
    if (reply or "").lower() in {"y", "yes"}:
        return True
    out.print("Not run.")
    return False


def _run_confirmed(assistant, call) -> str:
    """Run a confirmed call with a progress bar, print its result, and return its summary for the history."""
    from assistant.tool_summary import summarize

    with _ProgressBar(call.name) as bar:
        finished = assistant.run_tool(call.name, call.arguments, progress=bar)
    if finished.status != "ok":
        err.print(f"[red]{finished.name} failed:[/] {finished.error}", highlight=False)
    else:
        _print_tool_result(finished)
    return summarize(finished)


# -- tools -------------------------------------------------------------------------------------------

def _run_tool_cli(name: str, arguments: dict[str, Any], settings: Settings, as_json: bool) -> None:
    from assistant.answer import ToolCall
    from assistant.tools import default_registry
    from assistant.tools.base import ToolContext
    from assistant.tools.policy import ToolPolicy

    registry = default_registry(settings)
    tool = registry.get(name)
    ToolPolicy.from_settings(settings).check(name, "cli")  # OVPERF_TOOLS=off: no tool runs, here neither
    arguments = tool.validate({k: v for k, v in arguments.items() if v is not None}, settings)
    with _ProgressBar(name) as bar:
        result = tool.function(arguments, ToolContext(settings=settings, progress=bar))
    if as_json:
        print(json.dumps(result, ensure_ascii=False, default=str))
    else:
        _print_tool_result(ToolCall(name=name, arguments=arguments, status="ok", result=result))


@app.command()
def bench(
    model: Annotated[str, typer.Argument(help="Catalog workload (resnet-50, ...) or path to .xml/.onnx.")],
    device: Annotated[str, typer.Option("--device")] = "CPU",
    hint: Annotated[str, typer.Option("--hint", help="latency or throughput")] = "latency",
    precision: Annotated[str, typer.Option("--precision", help="fp32, fp16 or int8")] = "fp32",
    seconds: Annotated[int, typer.Option("--seconds", help="Duration of the measurement")] = 10,
    as_json: JsonOpt = False,
) -> None:
    """Run benchmark_app on a catalog workload or your own model, as the FAQ describes."""
    _run_tool_cli("run_benchmark", dict(model=model, device=device, hint=hint, precision=precision,
                                        seconds=seconds), settings_from(), as_json)


@app.command("bench-llm")
def bench_llm(
    model: Annotated[str | None, typer.Option(
        "--model", help="Catalog LLM (e.g. DeepSeek-R1-Distill-Qwen-1.5B), or a GGUF file / IR folder.")] = None,
    precision: Annotated[str | None, typer.Option(
        "--precision", help="int4 (default) or int8, for a catalog LLM")] = None,
    prompt_tokens: Annotated[int, typer.Option("--prompt-tokens")] = 128,
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens")] = 64,
    iterations: Annotated[int, typer.Option("--iterations")] = 3,
    as_json: JsonOpt = False,
) -> None:
    """Measure an LLM llm_bench-style: first/second token latency, tokens/s, peak memory."""
    _run_tool_cli("benchmark_llm", dict(model=model, precision=precision, prompt_tokens=prompt_tokens,
                                        max_new_tokens=max_new_tokens, iterations=iterations),
                  settings_from(), as_json)


@app.command("bench-diffusion")
def bench_diffusion(
    model: Annotated[str, typer.Option(
        "--model", help="Catalog diffusion pipeline: Stable-Diffusion-V1-5 or FLUX.1-schnell.")
    ] = "Stable-Diffusion-V1-5",
    precision: Annotated[str | None, typer.Option("--precision", help="int8 (default), int4 or fp16")] = None,
    steps: Annotated[int, typer.Option("--steps", help="Denoising steps per image")] = 4,
    iterations: Annotated[int, typer.Option("--iterations", help="Measured images after one warm-up")] = 1,
    as_json: JsonOpt = False,
) -> None:
    """Measure a diffusion pipeline with Text2ImagePipeline: seconds per image and per step, peak memory."""
    _run_tool_cli("benchmark_diffusion", dict(model=model, precision=precision, steps=steps, iterations=iterations),
                  settings_from(), as_json)


@app.command()
def sysinfo(as_json: JsonOpt = False) -> None:
    """CPU, ISA (AVX2, AVX-512, VNNI, AMX), memory, OpenVINO version and devices."""
    _run_tool_cli("system_info", {}, settings_from(), as_json)


@app.command()
def history(
    fmt: Annotated[str, typer.Option("--format", help="table, json or csv")] = "table",
    limit: Annotated[int, typer.Option("--limit")] = 50,
) -> None:
    """List stored benchmark results (or export them as JSON/CSV)."""
    from assistant.history import History

    store = History(settings_from().history_db)
    if fmt in {"json", "csv"}:
        print(store.export(fmt))
        return
    table = Table("id", "when", "kind", "model", "device", "hint", "precision", "median ms", "FPS")
    for row in store.list(limit=limit):
        result = row.get("result") or {}
        latency = ((result.get("latency_ms") or {}).get("median") or result.get("first_token_ms")
                   or 1000 * (result.get("seconds_per_image") or 0))  # a diffusion run: ms per image
        fps = result.get("throughput_fps") or result.get("tokens_per_s")
        table.add_row(str(row.get("id")), str(row.get("created_at", ""))[:19], str(row.get("kind")),
                      str(row.get("model")), str(row.get("device") or ""), str(row.get("hint") or ""),
                      str(row.get("precision") or ""), f"{latency:.2f}" if latency else "",
                      f"{fps:.1f}" if fps else "")
    out.print(table)


# -- index / models / eval / serve -----------------------------------------------------------------

@app.command()
def index(knowledge: KnowledgeOpt = None) -> None:
    """Rebuild the retrieval index and report what it indexed."""
    from assistant.knowledge import load_knowledge
    from assistant.retrieval import Embedder, Retriever

    settings = settings_from(knowledge=knowledge)
    chunks = load_knowledge(settings.knowledge_dirs)
    report = Retriever.build(chunks, index_dir=settings.index_dir,
                             embedder=Embedder(settings.embedder_cache_dir))
    print(json.dumps(report.to_dict(), default=str, indent=2))


@app.command()
def intents(as_json: JsonOpt = False) -> None:
    """Train the intent classifier from its corpus and print its held-out scores (each question set left out)."""
    from assistant.intent import CORPUS, held_out_scores, load_corpus
    from assistant.multilingual import MultilingualEmbedder

    settings = settings_from()
    embedder = MultilingualEmbedder(settings.embedder_cache_dir)
    examples = load_corpus(CORPUS)
    vectors = embedder.encode([e.question for e in examples], kind="query")
    scores = held_out_scores(examples, vectors)
    if as_json:
        print(json.dumps(scores, indent=2))
        return
    table = Table(title=f"intent accuracy, each set held out ({scores['examples']} labelled questions)")
    table.add_column("held-out set")
    table.add_column("accuracy", justify="right")
    for name, value in scores["per_set"].items():
        table.add_row(name, f"{value:.3f}")
    table.add_row("overall", f"{scores['overall']:.3f}")
    if scores["passage"] is not None:
        table.add_row(f"FAQ passage of {scores['passage_questions']} FAQ questions", f"{scores['passage']:.3f}")
    Console().print(table)


@models_app.command("list")
def models_list() -> None:
    """Known models and whether they are present and verified."""
    from assistant.models import list_models

    table = Table("name", "present", "verified", "size", "path")
    for item in list_models(settings_from()):
        table.add_row(str(item.get("name")), str(item.get("present")), str(item.get("verified")),
                      str(item.get("size", "")), str(item.get("path")))
    out.print(table)


@models_app.command("pull")
def models_pull(name: Annotated[str, typer.Argument()] = "smollm2-135m-instruct") -> None:
    """Download and verify a model from the manifest (default: the assistant's LLM)."""
    from assistant.models import pull

    with _ProgressBar(f"Pulling {name}") as bar:
        path = pull(name, settings_from(), progress=bar)
    out.print(f"{name}: {path}")


@models_app.command("convert")
def models_convert(
    src: Annotated[str, typer.Argument(help="Hugging Face id or local checkpoint folder")],
    out_dir: Annotated[Path, typer.Argument(help="Output folder for the OpenVINO IR")],
    weight_format: Annotated[str, typer.Option("--weight-format", help="fp16, int8 or int4")] = "int8",
) -> None:
    """Export a Hugging Face checkpoint to OpenVINO IR (tokenizers included) for --model OUT."""
    from assistant.models import convert

    with _ProgressBar(f"Converting {src}") as bar:
        path = convert(src, out_dir, weight_format=weight_format, progress=bar)
    out.print(f"Converted to {path}; use it with --model {path}")


@app.command("eval")
def eval_command(
    file: Annotated[Path, typer.Argument(help="JSONL questions (shared/eval/dev.jsonl format)")],
    as_json: JsonOpt = False,
    model: ModelOpt = None, knowledge: KnowledgeOpt = None, summary: SummaryOpt = True,
) -> None:
    """Score the assistant: source recall@3, facts, refusals, tool routing, latency."""
    from assistant.evaluation import evaluate, load_questions

    questions = load_questions(file)
    assistant = _build_assistant(settings_from(model, None, knowledge, tools_mode="plan",
                                               llm_summary=None if summary else False))
    assistant.ask("warm-up: how is latency measured?")  # load the model outside the timings
    report = evaluate(lambda q: assistant.ask(q, tools="plan").to_dict(), questions)
    metrics = report.metrics()
    if as_json:
        print(json.dumps({"metrics": metrics, "rows": report.rows}, ensure_ascii=False, default=str))
        return
    table = Table("id", "kind", "pass", "ms", "question")
    for row in report.rows:
        table.add_row(str(row["id"]), row["kind"], "✓" if row["passed"] else "✗", f"{row['latency_ms']:.0f}",
                      row["question"][:70])
    out.print(table)
    summary = Table("metric", "value")
    for key, value in metrics.items():
        if key != "by_kind":
            summary.add_row(key, str(value))
    out.print(summary)


@app.command()
def serve(host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
          port: Annotated[int, typer.Option("--port")] = 7860,
          model: ModelOpt = None, device: DeviceOpt = None, knowledge: KnowledgeOpt = None,
          llm_endpoint: EndpointOpt = None) -> None:
    """Serve the web chat and the HTTP API."""
    from assistant.server import serve as run_server

    run_server(settings_from(model, device, knowledge, llm_endpoint), host=host, port=port)


def main() -> None:
    """Console entry point: errors become a clear message and an exit code, never a traceback."""
    try:
        app(standalone_mode=False)
    except AssistantError as error:
        err.print(f"[red]error:[/] {error.message}", markup=True, highlight=False)
        if error.hint:
            err.print(error.hint, markup=False)
        sys.exit(error.exit_code)
    except typer.Abort:
        sys.exit(130)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except typer.Exit as exit_:
        sys.exit(exit_.exit_code)
    except Exception as error:  # click usage errors and the unexpected
        import click

        # typer >= 0.20 vendors click: its usage errors are not click.ClickException, but behave alike
        if isinstance(error, click.ClickException) or (callable(getattr(error, "show", None))
                                                       and isinstance(getattr(error, "exit_code", None), int)):
            error.show()
            sys.exit(error.exit_code)
        err.print(f"[red]internal error:[/] {error.__class__.__name__}: {error}")
        err.print("Please report it with the command you ran. Set OVPERF_DEBUG=1 for the traceback.")
        if os.environ.get("OVPERF_DEBUG"):
            raise
        sys.exit(70)


if __name__ == "__main__":
    main()

"""Property-based tests (hypothesis): the knowledge parsers, the catalog matcher, tool argument validation,
the early stop of a looping sentence.

Bounded example counts and no deadline, so the module runs in seconds on two cores.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assistant.catalog import Catalog, CatalogEntry, catalog_from_documents
from assistant.config import Settings
from assistant.errors import AssistantError, ToolArgumentError
from assistant.knowledge import Chunk, Document
from assistant.markdown_parser import parse_markdown
from assistant.models import load_manifest
from assistant.prose_check import Repeating, RepetitionWatch, problems
from assistant.rst_parser import parse_rst
from assistant.tools import default_registry
from assistant.tools.benchmark import available_devices
from assistant.tools.llm_workloads import LLM_WORKLOADS
from assistant.tools.workloads import BUILDABLE

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- knowledge parsers ------------------------------------------------------------------------------------

WORDS = st.sampled_from(["latency", "throughput", "resnet-50", "Table 0", "table-0", "INT8", "FAQ", "x", "",
                         "How is latency measured?", "Model", "Input Size", "ü", "日本", "**bold**", "``code``",
                         "`link <https://example.org>`__", ":doc:`Guide <guide>`", "|sub|", "[1]_", "_target",
                         "\\", "*", "`", "-", "=", ":", "..", "::", "<", ">", "\t"])
LINE = st.lists(WORDS, max_size=8).map(" ".join) | st.text(max_size=40)


def _underline(title: str, char: str) -> str:
    return f"{title}\n{char * max(len(title), 1)}\n"


@st.composite
def rst_documents(draw: st.DrawFn) -> str:
    """RST built from the constructs the parser handles (sections, dropdowns, tables, code) plus noise."""
    blocks = []
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(["section", "dropdown", "list-table", "grid", "code", "para", "noise",
                                     "directive", "bullets"]))
        title = draw(LINE).replace("\n", " ").strip() or "T"
        if kind == "section":
            blocks.append(_underline(title, draw(st.sampled_from("=-~^*#"))))
        elif kind == "dropdown":
            body = "\n".join(f"   {draw(LINE)}" for _ in range(draw(st.integers(0, 3))))
            blocks.append(f".. dropdown:: {title}\n\n{body}\n")
        elif kind == "list-table":
            cols = draw(st.integers(1, 4))
            rows = draw(st.integers(0, 4))
            lines = [".. list-table::", "   :header-rows: 1", ""]
            for _ in range(rows + 1):
                cells = [draw(st.sampled_from(["Model", "Input Size", "resnet-50", "resnet-50", "", "`n <u>`__",
                                               "128K", "x"])) for _ in range(cols)]
                lines.append(f"   * - {cells[0]}")
                lines.extend(f"     - {c}" for c in cells[1:])
            blocks.append("\n".join(lines) + "\n")
        elif kind == "grid":
            blocks.append("+-----+-----+\n| Model | Input Size |\n+=====+=====+\n| a | 1 |\n+-----+-----+\n")
        elif kind == "code":
            blocks.append(f".. code-block:: sh\n\n   {draw(LINE)}\n")
        elif kind == "directive":
            name = draw(st.sampled_from(["note", "tab-set", "include", "raw", "image", "toctree", "unknown-x",
                                         "tab-item", "only", "csv-table"]))
            blocks.append(f".. {name}:: {draw(LINE)}\n\n   {draw(LINE)}\n")
        elif kind == "bullets":
            blocks.append("\n".join(f"* {draw(LINE)}" for _ in range(draw(st.integers(1, 3)))) + "\n")
        elif kind == "noise":
            blocks.append(draw(st.text(max_size=120)))
        else:
            blocks.append(draw(LINE) + "\n")
    return "\n".join(blocks)


@st.composite
def markdown_documents(draw: st.DrawFn) -> str:
    blocks = []
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(["heading", "table", "code", "para", "noise", "list"]))
        if kind == "heading":
            blocks.append(f"{'#' * draw(st.integers(1, 6))} {draw(LINE)}")
        elif kind == "table":
            cols = draw(st.integers(1, 4))
            head = "| " + " | ".join(draw(st.sampled_from(["Model", "Input Size", "Task", "", "x"]))
                                     for _ in range(cols)) + " |"
            rows = ["| " + " | ".join(draw(st.sampled_from(["a", "a", "[n](https://e.org)", "", "`c`"]))
                                      for _ in range(draw(st.integers(0, cols + 1)))) + " |"
                    for _ in range(draw(st.integers(0, 4)))]
            blocks.append("\n".join([head, "|" + "---|" * cols, *rows]))
        elif kind == "code":
            blocks.append(f"```\n{draw(LINE)}\n```")
        elif kind == "list":
            blocks.append("\n".join(f"- {draw(LINE)}" for _ in range(draw(st.integers(1, 3)))))
        elif kind == "noise":
            blocks.append(draw(st.text(max_size=120)))
        else:
            blocks.append(draw(LINE))
    return "\n\n".join(blocks)


def _check_document(document: Document, source: str) -> None:
    ids = [chunk.id for chunk in document.chunks]
    assert len(ids) == len(set(ids)), f"duplicate chunk ids: {sorted(i for i in ids if ids.count(i) > 1)}"
    by_id = {chunk.id: chunk for chunk in document.chunks}
    for chunk in document.chunks:
        assert isinstance(chunk, Chunk) and chunk.id.startswith(f"{source}#")
        assert chunk.kind in {"faq", "section", "table", "row"} and chunk.source == source
        assert isinstance(chunk.text, str) and isinstance(chunk.title, str)
        if chunk.kind == "row":
            assert by_id[chunk.meta["table"]].kind == "table"
    # the catalog built from these tables points at the row chunks that exist
    for entry in catalog_from_documents([document]):
        row = by_id[entry.chunk_id]
        assert row.kind == "row" and entry.model in row.text


@FAST
@given(text=rst_documents())
def test_rst_parser_never_crashes_and_ids_are_unique(text: str) -> None:
    _check_document(parse_rst(text, path=Path("doc.rst"), source="doc.rst"), "doc.rst")


@FAST
@given(text=st.text(max_size=400))
def test_rst_parser_survives_arbitrary_text(text: str) -> None:
    _check_document(parse_rst(text, path=Path("any.rst"), source="any.rst"), "any.rst")


@FAST
@given(text=markdown_documents())
def test_markdown_parser_never_crashes_and_ids_are_unique(text: str) -> None:
    _check_document(parse_markdown(text, path=Path("doc.md"), source="doc.md"), "doc.md")


@FAST
@given(text=st.text(max_size=400))
def test_markdown_parser_survives_arbitrary_text(text: str) -> None:
    _check_document(parse_markdown(text, path=Path("any.md"), source="any.md"), "any.md")


# -- catalog matcher --------------------------------------------------------------------------------------

@FAST
@given(text=st.text(max_size=200) | st.lists(WORDS | st.sampled_from(["yolo", "llama", "qwen 2.5 7b", "sd 1.5",
                                                                         "phi-3 mini", "bert", "7b", "128k"]),
                                              max_size=10).map(" ".join))
def test_catalog_matcher_never_crashes(catalog: Catalog, text: str) -> None:
    matches = catalog.match(text)
    assert all(0.0 <= m.score <= 1.0 for m in matches)
    found = catalog.find(text)
    assert found is None or found in catalog.entries
    assert all(entry in catalog.entries for entry in catalog.candidates(text))


@FAST
@given(data=st.data())
def test_exact_catalog_names_resolve_to_themselves(catalog: Catalog, data: st.DataObject) -> None:
    entry = data.draw(st.sampled_from(catalog.entries))
    spelled = data.draw(st.sampled_from([entry.model, entry.model.upper(), entry.model.lower(),
                                         f"  {entry.model}  "]))
    assert catalog.find(spelled) == entry
    framed = data.draw(st.sampled_from(["What is the input size of {}?", "Tell me about {}.", "{} input size",
                                        "benchmark {} on my cpu"])).format(entry.model)
    assert entry in [m.entry for m in catalog.match(framed) if m.score == 1.0]


def _squash(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


NAME = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-._ ", min_size=1, max_size=24) \
    | st.sampled_from(["resnet-50", "Qwen-2-7B", "Qwen-2-7B-Instruct", "phi-3-mini", "sd-1.5", "llama-3-8b"])


@FAST
@given(names=st.lists(NAME, min_size=1, max_size=12, unique_by=_squash), data=st.data())
def test_exact_names_resolve_to_themselves_in_any_catalog(names: list[str], data: st.DataObject) -> None:
    names = [n for n in names if _squash(n)]
    if not names:
        return
    catalog = Catalog(CatalogEntry(model=n, network=f"net-{i}", task="classification", input_size="224x224",
                                   url=None, source="s.rst", chunk_id=f"s.rst#row-{i}") for i, n in enumerate(names))
    name = data.draw(st.sampled_from(names))
    assert catalog.find(name).model == name


# -- tool argument validation ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tool_world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("props")
    allowed, outside, models = root / "allowed", root / "outside", root / "models"
    for folder in (allowed, outside, models, allowed / "sub"):
        folder.mkdir()
    for folder in (allowed, allowed / "sub", outside):
        (folder / "model.xml").write_text("<net/>")
        (folder / "model.bin").write_bytes(b"\0")
        (folder / "m.onnx").write_bytes(b"\0")
    (allowed / "nobin.xml").write_text("<net/>")
    (allowed / "link.xml").symlink_to(outside / "model.xml")
    (allowed / "link.bin").symlink_to(outside / "model.bin")
    (allowed / "escape").symlink_to(outside, target_is_directory=True)
    (models / "tiny.gguf").write_bytes(b"GGUF")
    (outside / "other.gguf").write_bytes(b"GGUF")
    settings_ = Settings(models_dir=models, cache_dir=root / "cache", history_db=root / "cache" / "h.sqlite",
                         bench_allowed_dirs=(allowed,), bench_max_seconds=60, auto_pull=False)
    return {"root": root, "allowed": allowed, "outside": outside, "models": models, "settings": settings_,
            "registry": default_registry(settings_)}


JSON_SCALARS = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=True) \
    | st.text(max_size=30)
JSON_VALUES = st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=6)
MODEL_TEXT = st.sampled_from([
    "resnet-50", "ResNet-50", "resnet50", "mobilenet v2", "bert", "bert-base-cased", "yolov8n", "Llama-3-8b", "llama",
    "r\u0435snet-50", "ｒｅｓｎｅｔ-５０", "resnet-50; rm -rf /", "$(id)", "-m", "--help", "model.xml", "m.onnx",
    "nobin.xml", "link.xml", "escape/model.xml", "sub/model.xml", "sub/../model.xml", "../outside/model.xml",
    "{allowed}/model.xml", "{allowed}/sub/m.onnx", "{outside}/model.xml", "{allowed}/../outside/model.xml",
    "{allowed}/link.xml", "{allowed}/escape/model.xml", "/etc/passwd", "/etc/passwd.xml", "tiny.gguf",
    "{models}/tiny.gguf", "{outside}/other.gguf", "smollm2-135m-instruct", "", " ", "model.xml\x00", "\ud800",
    "./model.xml", "allowed/model.xml", "~/model.xml", "MODEL.XML", "model.xml ",
]) | st.text(max_size=20)
INTS = st.integers(-5, 5000) | st.sampled_from([0, 1, 16, 60, 61, 120, 4096, 4097, 2**63]) \
    | st.floats(allow_nan=True) | st.sampled_from([1.0, 10.0, 10.5, True, False, "10"])
DEVICES = st.sampled_from(["CPU", "cpu", "GPU", "NPU", "AUTO", "AUTO:CPU", "HETERO:CPU", "MULTI:CPU,GPU", "CPU;id",
                           "", " CPU", "CPU.0", "FPGA"]) | st.text(max_size=8)
KEYS = {"run_benchmark": {"model": MODEL_TEXT, "device": DEVICES, "hint": st.sampled_from(["latency", "throughput",
                                                                                          "fast", "", "LATENCY"]),
                          "precision": st.sampled_from(["fp32", "fp16", "int8", "int4", "bf16"]), "seconds": INTS},
        "benchmark_llm": {"model": MODEL_TEXT, "prompt_tokens": INTS, "max_new_tokens": INTS, "iterations": INTS},
        "system_info": {}}


@st.composite
def arguments_for(draw: st.DrawFn, name: str) -> Any:
    """Mostly well-typed candidates (to reach the allow-lists), some arbitrary JSON values and extra keys."""
    if draw(st.integers(0, 9)) == 0:
        return draw(JSON_VALUES)
    arguments = {}
    for key, strategy in KEYS[name].items():
        if draw(st.booleans()):
            arguments[key] = draw(strategy | JSON_VALUES if draw(st.integers(0, 4)) == 0 else strategy)
    if draw(st.integers(0, 5)) == 0:
        arguments[draw(st.text(max_size=6))] = draw(JSON_VALUES)
    return arguments


def _expand(value: Any, world: dict[str, Any]) -> Any:
    if isinstance(value, str):
        for key in ("allowed", "outside", "models"):
            value = value.replace("{" + key + "}", str(world[key]))
    return value


def _inside(path: Path, roots: list[Path]) -> bool:
    real = path.resolve()
    return any(real == r.resolve() or real.is_relative_to(r.resolve()) for r in roots)


def _assert_run_benchmark_arguments_are_safe(args: dict[str, Any], world: dict[str, Any]) -> None:
    settings_: Settings = world["settings"]
    model = args["model"]
    assert isinstance(model, str) and model.strip() and not model.startswith("-")
    model = model.strip()  # the tool strips it before resolving, here and when it runs
    assert not re.search(r"[;&|$`<>!*?{}()\[\]'\"\\\x00-\x1f\x7f]", model), model
    assert model.isascii()
    if "/" in model or model.lower().endswith((".xml", ".onnx")):
        assert ".." not in Path(model).parts
        roots = [world["allowed"], world["models"]]
        raw = Path(model)
        candidates = [raw] if raw.is_absolute() else [*(r / raw for r in roots), Path.cwd() / raw]
        usable = [c for c in candidates if c.is_file() and _inside(c, roots)
                  and c.resolve().suffix.lower() in {".xml", ".onnx"}]
        assert usable, f"{model} does not resolve to a model file inside the allowed folders"
        assert not any(c.resolve().is_relative_to(world["outside"].resolve()) for c in usable)
    else:
        from assistant.catalog import default_catalog

        entry = default_catalog(settings_.knowledge_dirs).find(model)
        assert entry is not None and entry.model in BUILDABLE, model
    device = args["device"]
    assert isinstance(device, str) and re.fullmatch(r"[A-Za-z][A-Za-z0-9_.:,]*", device)
    members = re.sub(r"^(AUTO|HETERO|MULTI):", "", device.upper()).split(",")
    assert device.upper() == "AUTO" or all(m.split(".")[0] in {d.split(".")[0] for d in available_devices()}
                                           for m in members if m)
    assert args["hint"] in {"latency", "throughput"} and args["precision"] in {"fp32", "fp16", "int8"}
    seconds = args["seconds"]
    assert type(seconds) is int and 1 <= seconds <= settings_.bench_max_seconds


def _assert_benchmark_llm_arguments_are_safe(args: dict[str, Any], world: dict[str, Any]) -> None:
    for key, (low, high) in {"prompt_tokens": (16, 4096), "max_new_tokens": (1, 1024), "iterations": (1, 20)}.items():
        assert type(args[key]) is int and low <= args[key] <= high, (key, args[key])
    model = args.get("model")
    if model is None:
        return
    assert isinstance(model, str) and not model.startswith("-") and "\x00" not in model
    _default, entries = load_manifest()
    if model in entries or model in LLM_WORKLOADS:  # a manifest model, or a catalog LLM (built, fit-checked)
        return
    assert ".." not in Path(model).parts
    path = Path(model) if Path(model).is_absolute() else world["models"] / model
    assert _inside(path, [world["models"], world["allowed"]]), model
    assert path.exists()


@pytest.mark.parametrize("name", ["run_benchmark", "benchmark_llm", "system_info"])
def test_tool_validation_never_accepts_an_invalid_argument(tool_world: dict[str, Any], name: str) -> None:
    tool = tool_world["registry"].get(name)
    schema = dict(tool.parameters)
    outcomes = {"accepted": 0, "rejected": 0}

    def probe(arguments: Any) -> None:
        if isinstance(arguments, dict):
            arguments = {k: _expand(v, tool_world) for k, v in arguments.items()}
        try:
            accepted = tool.validate(arguments, tool_world["settings"])
        except ToolArgumentError as error:
            assert error.message and "Traceback" not in str(error)
            outcomes["rejected"] += 1
            return
        outcomes["accepted"] += 1
        assert isinstance(arguments, dict)
        jsonschema.Draft202012Validator(schema).validate(accepted)
        assert set(accepted) <= set(schema["properties"])
        assert all(not (isinstance(v, float) and not math.isfinite(v)) for v in accepted.values())
        if name == "run_benchmark":
            _assert_run_benchmark_arguments_are_safe(accepted, tool_world)
        elif name == "benchmark_llm":
            _assert_benchmark_llm_arguments_are_safe(accepted, tool_world)
        else:
            assert accepted == {}

    check = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])(
        given(arguments=arguments_for(name))(probe))
    check()
    # tool arguments are exact names, so a random draw is rarely valid whole: the accepted path is also
    # checked on one known-valid call every run
    probe({"run_benchmark": {"model": "resnet-50"}, "benchmark_llm": {}, "system_info": {}}[name])
    assert outcomes["rejected"] > 0
    if name != "system_info":
        assert outcomes["accepted"] > 0, "the strategy never produced a valid argument set"


def test_tool_validation_errors_are_assistant_errors(tool_world: dict[str, Any]) -> None:
    """A sanity check of the harness: validation raises only ToolArgumentError (an AssistantError)."""
    tool = tool_world["registry"].get("run_benchmark")
    with pytest.raises(AssistantError):
        tool.validate({"model": "resnet-50", "seconds": 10.5}, tool_world["settings"])


# -- the early stop of a looping sentence ----------------------------------------------------------------

FEW_WORDS = st.sampled_from(["the", "model", "is", "in", "run", "on", "CPU", "[1]", "fast"])
GROWN = {"model": "models", "in": "inference", "run": "runs", "on": "one", "CPU": "CPUs", "fast": "faster"}


@FAST
@given(phrase=st.lists(FEW_WORDS, min_size=2, max_size=5), middle=st.lists(FEW_WORDS, max_size=4),
       grow=st.booleans(), tail=st.lists(FEW_WORDS, max_size=3), separator=st.sampled_from([" ", ", "]))
def test_a_sentence_is_stopped_only_when_it_can_no_longer_be_shown(phrase: list[str], middle: list[str],
                                                                   grow: bool, tail: list[str],
                                                                   separator: str) -> None:
    """Streamed a character at a time (every cut a tokenizer could make), the watch stops exactly the
    sentences the prose checks reject as repeating, never on a word that may still grow ("in" -> "inference")."""
    again = [*phrase[:-1], GROWN.get(phrase[-1], phrase[-1]) if grow else phrase[-1]]
    sentence = separator.join([*phrase, *middle, *again, *tail]) + "."
    watch, stopped = RepetitionWatch(), False
    for character in sentence:
        try:
            watch(character)
        except Repeating:
            stopped = True
            break
    assert stopped == ("repeats itself" in problems(sentence, source=sentence, quote=sentence))

"""`ovperf` end to end in subprocesses: the answer JSON contract and every bad input's message."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from live_server import shared_cache

from assistant.config import PROJECT_ROOT


@pytest.fixture(scope="session")
def cli_env(tmp_path_factory) -> dict[str, str]:
    """Environment for `ovperf`: a session cache (index, embedder export), the project's models folder."""
    cache = shared_cache(tmp_path_factory.mktemp("cli-cache"))
    return {**os.environ, "OVPERF_CACHE_DIR": str(cache), "OVPERF_MODELS_DIR": str(PROJECT_ROOT / "models"),
            "PYTHONIOENCODING": "utf-8"}


def ovperf(env: dict[str, str], *args: str, stdin: bytes | None = None, timeout: int = 600
           ) -> subprocess.CompletedProcess:
    """Run the CLI as a user would."""
    return subprocess.run([sys.executable, "-m", "assistant.cli", *args], input=stdin, capture_output=True,
                          env=env, timeout=timeout, cwd=PROJECT_ROOT)


def assert_clean_error(result: subprocess.CompletedProcess, *, contains: str) -> None:
    """A non-zero exit, the message on stderr, and no traceback anywhere."""
    stderr = result.stderr.decode("utf-8", "replace")
    assert result.returncode != 0, stderr
    assert "Traceback" not in stderr and "Traceback" not in result.stdout.decode("utf-8", "replace")
    assert contains.lower() in stderr.lower(), stderr


def test_empty_question(cli_env):
    assert_clean_error(ovperf(cli_env, "ask", "   "), contains="empty")


def test_100kb_question(cli_env):
    assert_clean_error(ovperf(cli_env, "ask", "why " * 25_000), contains="too long")


def test_missing_knowledge_folder(cli_env, tmp_path):
    assert_clean_error(ovperf(cli_env, "ask", "How is latency measured?", "--knowledge", str(tmp_path / "no")),
                       contains="knowledge folder not found")


def test_undecodable_knowledge_file(cli_env, tmp_path):
    (tmp_path / "broken.rst").write_bytes(b"Title\n=====\n\n\xff\xfe\n")
    assert_clean_error(ovperf(cli_env, "ask", "How is latency measured?", "--knowledge", str(tmp_path)),
                       contains="cannot read knowledge file")


def test_missing_model_file_names_what_to_do(cli_env, tmp_path):
    result = ovperf(cli_env, "ask", "How is latency measured?", "--model", str(tmp_path / "nope.gguf"))
    assert_clean_error(result, contains="nope.gguf")


def test_corrupt_default_model_gives_the_re_pull_hint(cli_env, tmp_path):
    manifest = json.loads((PROJECT_ROOT / "models" / "manifest.json").read_text())
    entry = next(iter(manifest["models"].values())) if "models" in manifest else None
    filename = entry["filename"] if entry and "filename" in entry else "SmolLM2-135M-Instruct.Q4_1.gguf"
    models = tmp_path / "models"
    models.mkdir()
    (models / filename).write_bytes(b"GGUF" + b"\0" * 1024)
    env = {**cli_env, "OVPERF_MODELS_DIR": str(models)}
    assert_clean_error(ovperf(env, "ask", "How is latency measured?"), contains="models pull")


def test_jsonl_with_invalid_utf8_and_bad_json_lines_keeps_going(cli_env):
    stdin = b'{"id": "a", "question": "What is the input size for mobilenet-v2?"}\n\xff\xfe\n{broken\n'
    result = ovperf(cli_env, "ask", "--jsonl", "-", stdin=stdin)
    assert result.returncode == 0, result.stderr.decode()
    lines = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert lines[0]["id"] == "a" and "224x224" in lines[0]["answer"]
    assert lines[1]["error"] == "InvalidQuestion" and "UTF-8" in lines[1]["message"]
    assert lines[2]["error"] == "InvalidQuestion" and "JSON" in lines[2]["message"]


def test_corrupt_index_is_rebuilt(cli_env):
    question = "Which models are benchmarked with a 128K input size?"
    first = ovperf(cli_env, "ask", question, "--json")
    assert first.returncode == 0, first.stderr.decode()
    index_dir = Path(cli_env["OVPERF_CACHE_DIR"]) / "index"
    files = [p for p in index_dir.rglob("*") if p.is_file()]
    assert files, "the index was not persisted"
    for path in files:
        path.write_bytes(b"garbage")
    second = ovperf(cli_env, "ask", question, "--json")
    assert second.returncode == 0, second.stderr.decode()
    assert json.loads(second.stdout)["answer"] == json.loads(first.stdout)["answer"]


@pytest.mark.model
def test_ask_json_contract_with_the_real_model(cli_env):
    result = ovperf(cli_env, "ask", "How is latency measured?", "--json")
    assert result.returncode == 0, result.stderr.decode()
    answer = json.loads(result.stdout)
    assert set(answer) >= {"question", "answer", "refused", "sources", "tool_calls", "timings_ms"}
    assert answer["refused"] is False and answer["tool_calls"] == []
    assert "synchronous" in answer["answer"]
    assert "[1]" in answer["answer"]
    top = answer["sources"][0]
    assert set(top) >= {"id", "title", "text", "score"} and "synchronous mode" in top["text"]
    scores = [s["score"] for s in answer["sources"]]
    assert scores == sorted(scores, reverse=True)
    assert answer["timings_ms"]["total"] > 0


@pytest.mark.model
def test_out_of_scope_is_refused_plainly(cli_env):
    result = ovperf(cli_env, "ask", "What is a good recipe for lasagna?", "--json")
    answer = json.loads(result.stdout)
    assert answer["refused"] is True and answer["sources"] == [] and answer["tool_calls"] == []
    assert "lasagna" not in answer["answer"].lower()


@pytest.mark.model
def test_tools_plan_returns_planned_calls(cli_env):
    result = ovperf(cli_env, "ask", "Benchmark resnet-50 for throughput on my CPU.", "--json", "--tools", "plan")
    answer = json.loads(result.stdout)
    call = answer["tool_calls"][0]
    assert call["name"] == "run_benchmark" and call["status"] == "planned"
    assert call["arguments"]["model"] == "resnet-50" and call["arguments"]["hint"] == "throughput"
    assert call["result"] is None


def test_version(cli_env):
    from assistant import __version__

    result = ovperf(cli_env, "--version")
    assert result.returncode == 0 and result.stdout.decode().strip() == f"ovperf {__version__}"


def test_chat_declined_run_runs_nothing(cli_env):
    result = ovperf(cli_env, "chat", stdin=b"benchmark resnet-50 for 2 seconds\nn\n")
    stdout = result.stdout.decode()
    assert result.returncode == 0, result.stderr.decode()
    assert "[y/N]" in stdout and "Not run." in stdout
    assert "Median latency" not in stdout and "off-topic" not in stdout.lower()


@pytest.mark.slow
@pytest.mark.parametrize(("flags", "stdin"), [((), b"benchmark resnet-50 for 2 seconds\ny\n"),
                                              (("--yes",), b"benchmark resnet-50 for 2 seconds\n")])
def test_chat_confirmed_run_prints_its_figures(cli_env, flags, stdin):
    result = ovperf(cli_env, "chat", *flags, stdin=stdin)
    stdout = result.stdout.decode()
    assert result.returncode == 0, result.stderr.decode()
    assert ("[y/N]" in stdout) == (not flags)
    for label in ("Throughput", "Median latency", "Average latency", "Min latency", "Max latency",
                  "Precision", "Device", "Duration"):
        assert label in stdout, stdout
    assert re.search(r"Throughput\s*│\s*[\d.]+ FPS", stdout) and "FP32 IR" in stdout
    assert "loss_type" not in result.stderr.decode()


def test_readme_examples_name_files_a_fresh_clone_has():
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    paths = set(re.findall(r"ovperf (?:ask --jsonl|eval) (\S+)", readme))
    assert paths, "the README shows no question file"
    assert all((PROJECT_ROOT / path).is_file() for path in paths), paths


@pytest.mark.model
def test_the_shipped_example_questions_pass(cli_env):
    result = ovperf(cli_env, "eval", "tests/data/examples.jsonl", "--json")
    assert result.returncode == 0, result.stderr.decode()
    report = json.loads(result.stdout)
    assert all(row["passed"] for row in report["rows"]), [r for r in report["rows"] if not r["passed"]]


@pytest.mark.slow
def test_building_a_workload_prints_no_transformers_advice(cli_env, tmp_path):
    """The build's output is the benchmark's progress log: no `loss_type=None` advice for model trainers."""
    env = {k: v for k, v in cli_env.items() if k not in {"TRANSFORMERS_VERBOSITY", "HF_HUB_DISABLE_PROGRESS_BARS"}}
    result = subprocess.run([sys.executable, "-m", "assistant.tools.workloads", "mobilenet-v2", "fp32",
                             "--models-dir", str(tmp_path)], capture_output=True, env=env, timeout=600,
                            cwd=PROJECT_ROOT)
    output = (result.stdout + result.stderr).decode("utf-8", "replace")
    assert result.returncode == 0, output
    assert "built mobilenet-v2 fp32" in output and "loss_type" not in output and "Loading weights" not in output

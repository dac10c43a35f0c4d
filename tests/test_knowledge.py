"""The knowledge parser: every FAQ question and every catalog row becomes a chunk."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from assistant.errors import KnowledgeError
from assistant.knowledge import load_documents, load_knowledge
from tests.conftest import FAQ

RAW = FAQ.read_text(encoding="utf-8")
QUESTIONS = re.findall(r"^\.\. dropdown:: (.+)$", RAW, flags=re.M)
# the table rows, read straight from the source: "* - `Name <url>`__"
ROW_NAMES = re.findall(r"^\s+\* - `([^<`]+?) <", RAW, flags=re.M)


def test_the_fixture_regexes_see_the_whole_faq():
    assert len(QUESTIONS) == 10
    assert len(ROW_NAMES) == 20


@pytest.mark.parametrize("question", QUESTIONS)
def test_every_faq_question_is_one_chunk_with_its_answer(faq_documents, question):
    chunks = [c for c in faq_documents[0].chunks if c.kind == "faq" and c.title == question.strip()]
    assert len(chunks) == 1
    body = chunks[0].text[len(question):].strip()
    assert len(body) > 20, "the answer text is missing"
    assert "``" not in body and ":doc:" not in body and "`__" not in body, "markup leaked into the text"


def test_benchmark_tool_answer_is_kept_whole(faq_documents):
    chunk = next(c for c in faq_documents[0].chunks if c.title.startswith("How can I run the benchmark"))
    for needle in ("benchmark_app", "llm_bench", "Getting Performance Numbers Guide"):
        assert needle in chunk.text


def test_faq_answers_keep_their_web_links_but_not_doc_cross_references(faq_documents):
    chunks = {c.title: c for doc in faq_documents for c in doc.chunks}
    models = chunks["Where can I find the models used in the performance benchmarks?"]
    assert models.meta["links"] == {"Hugging Face": "https://huggingface.co/OpenVINO"}
    assert "https://" not in models.text  # the indexed text stays plain
    run = chunks["How can I run the benchmark results on my own?"]
    assert all(url.startswith("https://") for url in run.meta["links"].values())
    assert "benchmark_app" not in run.meta["links"]  # a :doc: reference, no web address


@pytest.mark.parametrize("name", ROW_NAMES)
def test_every_catalog_row_is_a_chunk(faq_documents, name):
    rows = [c for c in faq_documents[0].chunks if c.kind == "row" and c.title == name]
    assert len(rows) == 1
    assert f"Model: {name}." in rows[0].text
    assert "Input Size:" in rows[0].text and "Task:" in rows[0].text


def test_table_is_also_one_chunk_with_every_row(faq_documents):
    tables = [c for c in faq_documents[0].chunks if c.kind == "table"]
    assert len(tables) == 1
    for name in ROW_NAMES:
        assert name in tables[0].text


def test_chunk_ids_are_unique_and_stable(faq_documents):
    ids = [c.id for c in faq_documents[0].chunks]
    assert len(ids) == len(set(ids))
    again = [c.id for c in load_documents([FAQ.parent])[0].chunks]
    assert ids == again


def test_other_rst_and_md_files_are_indexed_too(tmp_path: Path):
    (tmp_path / "tuning.md").write_text(
        "# Tuning\n\nIntro.\n\n## Threads\n\nSet `INFERENCE_NUM_THREADS` to the core count.\n\n"
        "| Model | Input Size |\n|---|---|\n| [tiny-net](https://example.org/tiny) | 32x32 |\n", encoding="utf-8")
    (tmp_path / "notes.rst").write_text(
        "Notes\n=====\n\nCaching\n-------\n\nUse ``CACHE_DIR`` to cache compiled models.\n\n"
        ".. note::\n\n   Works on CPU and GPU.\n", encoding="utf-8")
    chunks = load_knowledge([tmp_path])
    by_title = {c.title: c for c in chunks}
    assert "INFERENCE_NUM_THREADS" in by_title["Threads"].text
    assert "CACHE_DIR" in by_title["Caching"].text
    assert "Works on CPU and GPU" in by_title["Caching"].text
    row = next(c for c in chunks if c.kind == "row")
    assert row.title == "tiny-net" and "32x32" in row.text and "https://example.org/tiny" in row.text


def test_missing_folder_is_a_clear_error(tmp_path: Path):
    with pytest.raises(KnowledgeError, match="not found"):
        load_knowledge([tmp_path / "nope"])


def test_empty_folder_is_a_clear_error(tmp_path: Path):
    with pytest.raises(KnowledgeError, match=r"no \.rst or \.md"):
        load_knowledge([tmp_path])


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file_is_a_clear_error(tmp_path: Path):
    path = tmp_path / "locked.rst"
    path.write_text("Title\n=====\n\ntext\n")
    path.chmod(0)
    with pytest.raises(KnowledgeError, match="cannot read"):
        load_knowledge([tmp_path])


def test_undecodable_file_is_a_clear_error(tmp_path: Path):
    (tmp_path / "bad.rst").write_bytes(b"Title\n=====\n\n\xff\xfe broken\n")
    with pytest.raises(KnowledgeError, match="cannot read") as info:
        load_knowledge([tmp_path])
    assert info.value.hint and "UTF-8" in info.value.hint


def test_raw_html_and_includes_are_not_executed(tmp_path: Path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET")
    (tmp_path / "evil.rst").write_text(
        f"Evil\n====\n\n.. include:: {secret}\n\n.. raw:: html\n\n   <script>alert(1)</script>\n\nSafe text.\n")
    text = " ".join(c.text for c in load_knowledge([tmp_path]))
    assert "TOPSECRET" not in text and "<script>" not in text and "Safe text." in text

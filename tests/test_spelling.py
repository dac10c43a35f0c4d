"""Typo repair before retrieval: only towards the knowledge's words, never of a real word."""

from __future__ import annotations

from assistant.retrieval import find_model_dir
from assistant.spelling import SpellFixer, vocabulary_words

KNOWLEDGE = "All models used are published on Hugging Face. Where can I purchase the specific hardware used?"


def test_the_embedders_vocabulary_is_read_without_pieces_or_special_tokens():
    words = vocabulary_words(find_model_dir() / "vocab.txt")
    assert {"download", "performance", "models"} <= words
    assert not any(w.startswith(("##", "[")) for w in words) and len(words) > 10_000


def test_misspelled_words_become_the_knowledges_words():
    fixer = SpellFixer(KNOWLEDGE.replace(".", " ").replace("?", " ").split())
    assert fixer.fix("Where can I purchse the hardwre for the modles?") == \
        "Where can I purchase the hardware for the models?"
    assert fixer.fix("Modles used") == "Models used"  # capitalisation kept


def test_real_words_names_and_short_words_stay_as_written(tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("[PAD]\n##ing\nlasagna\npointer\nbrowse\n", encoding="utf-8")
    fixer = SpellFixer(["models", "pointed", "browser", "hardware"], vocabulary_words(vocab))
    # a word of the vocabulary, also with a plural ending; names with inner capitals; short words; digits
    text = "lasagna pointers browse TensorRT hardwa yolov8n modls"
    assert fixer.fix(text) == "lasagna pointers browse TensorRT hardwa yolov8n models"


def test_a_missing_vocabulary_file_gives_no_words(tmp_path):
    assert vocabulary_words(tmp_path / "missing.txt") == set()

"""Understanding from data: the multilingual embedder, the intent classifier, language, prose checks."""

from __future__ import annotations

import json

import numpy as np
import pytest
from live_server import shared_cache

from assistant import language, prose_check
from assistant.config import PROJECT_ROOT
from assistant.intent import CORPUS, INTENTS, load_corpus
from assistant.knowledge import load_documents
from assistant.multilingual import find_weights, read_e5_file
from assistant.phrasing import question_parts


@pytest.fixture(scope="module")
def understanding(tmp_path_factory):
    from assistant.understanding import Understanding

    chunks = [c for d in load_documents([PROJECT_ROOT / "knowledge"]) for c in d.chunks]
    return Understanding.shared(shared_cache(tmp_path_factory.mktemp("cache")) / "embedder", chunks)


def test_the_corpus_is_labelled_with_known_intents_and_fields():
    examples = load_corpus(CORPUS)
    assert len(examples) > 1000
    assert {e.label for e in examples} == set(INTENTS)
    assert {e.lang for e in examples} >= {"en", "de", "fr", "es", "zh", "ja"}
    # the catalog's four fields, and "not held": a catalog model asked for what the table does not give
    assert {e.attribute for e in examples if e.attribute} <= {"input_size", "task", "network", "url", "not_held"}
    headings = {c.title for d in load_documents([PROJECT_ROOT / "knowledge"]) for c in d.chunks
                if c.kind in {"faq", "section"}}
    assert {e.passage for e in examples if e.passage} <= headings  # a labelled answer is an FAQ entry
    assert all(e.label == "faq" for e in examples if e.passage)
    lines = CORPUS.read_text(encoding="utf-8").splitlines()
    assert len({json.loads(line)["question"].lower() for line in lines}) == len(lines)  # no duplicates


def test_the_model_file_parses_into_a_bert_of_the_published_size():
    weights = read_e5_file(find_weights())
    assert (weights.hidden, weights.layers, weights.heads, weights.intermediate) == (384, 12, 12, 1536)
    assert weights.tensor("l0.q.w", (384, 384)).std() > 0  # dequantized, not zeros
    assert weights.pieces[weights.special["unk"]] == "<unk>"


def test_translations_land_next_to_each_other_and_away_from_other_topics(understanding):
    vectors = understanding.embedder.encode(
        ["How is latency measured?", "Wie wird die Latenz gemessen?", "延迟是如何测量的？",
         "What is the weather in Paris?"])
    similar = vectors[0] @ vectors[1:3].T
    assert similar.min() > vectors[0] @ vectors[3]


@pytest.mark.parametrize(("question", "intent"), [
    ("Welche Eingabegröße hat yolov8n?", "catalog"),
    ("Lance un benchmark de resnet-50 sur mon processeur, s'il te plaît.", "run_benchmark"),
    ("¿Cuántos núcleos tiene esta máquina?", "system_info"),
    ("どのくらいの頻度でベンチマーク結果が更新されますか？", "faq"),
    ("巴黎明天的天气怎么样？", "out_of_scope"),
])
def test_intent_in_other_languages(understanding, question, intent):
    assert understanding.predict(question).label == intent


@pytest.mark.parametrize(("question", "heading"), [
    ("Wo werden die Modelle veröffentlicht, die für die Benchmarks verwendet werden?",
     "Where can I find the models used in the performance benchmarks?"),
    ("¿Cada cuánto tiempo salen resultados nuevos?", "How often do performance benchmarks get updated?"),
    ("Où puis-je acheter le matériel utilisé pour les benchmarks ?",
     "Where can I purchase the specific hardware used in the benchmarking?"),
    ("延迟是在什么模式下测的？", "How is Latency measured?"),
])
def test_foreign_questions_find_the_faq_passage(understanding, question, heading):
    hit = understanding.search(question)[0]
    assert hit.chunk.title == heading and hit.score >= hit.similarity


@pytest.mark.parametrize(("text", "code"), [
    ("Wie wird die Latenz bei den Benchmarks gemessen?", "de"),
    ("Quelle est la taille d'entrée du modèle yolov8n ?", "fr"),
    ("yolov8nの入力サイズは？", "ja"), ("yolov8n 的输入尺寸是多少？", "zh"),
    ("benchmark resnet-50", "en"), ("What is the input size of bert-base-cased?", "en"),
])
def test_language_detection(text, code):
    assert language.detect(text) == code


def test_every_language_has_every_sentence_of_the_assistant():
    for code in language.LANGUAGES[1:]:
        assert language.text("refusal", code) and language.text("matches", code, count="3")
        assert "yolov8n" in language.text("field", code, model="yolov8n", field="x", value="608x608")
    assert language.text("refusal", "en") is None  # English keeps the caller's own wording


def test_prose_checks_catch_loops_cuts_negations_and_dropped_facts():
    source = "New performance benchmarks are typically published on every major.minor release."
    loop = "The results were produced using benchmark_app. The results were produced using benchmark_app."
    assert "repeats itself" in prose_check.problems(loop, source=loop, quote=loop)
    assert "stops mid-sentence" in prose_check.problems("Benchmarks are published on every major.minor",
                                                        source=source, quote=source)
    assert "negates what the source does not" in prose_check.problems(
        "Benchmarks are not published on every major.minor release [1].", source=source, quote=source)
    assert "drops the quote's facts" in prose_check.problems("Benchmarks are published on [1].",
                                                             source=source, quote=source)
    assert prose_check.problems("Benchmarks are published on every major.minor release [1].",
                                source=source, quote=source) == []


def test_a_message_of_two_questions_has_two_parts():
    assert question_parts("How often is it refreshed, and is the list going to grow?") == [
        "How often is it refreshed", "is the list going to grow?"]
    statement_then_question = "We run vision models. Which tool was used?"
    assert question_parts(statement_then_question) == [statement_then_question]


def test_the_trained_classifier_is_cached_and_reloaded_with_the_same_predictions(tmp_path, understanding):
    from assistant.intent import IntentClassifier

    first = understanding.classifier
    again = IntentClassifier(understanding.embedder, first.cache_path.parent)
    assert again.cache_path == first.cache_path
    question = "How many models in the catalog take a 128K input?"
    assert np.allclose(list(again.predict(question).probabilities.values()),
                       list(first.predict(question).probabilities.values()))
    vector = understanding.embedder.encode(["Where are the benchmarked networks published?"], kind="query")[0]
    assert again.passage_probabilities(vector) == pytest.approx(first.passage_probabilities(vector))


def test_the_passage_head_knows_every_labelled_heading_and_ranks_by_it(understanding):
    labelled = {e.passage for e in load_corpus(CORPUS) if e.passage}
    assert set(understanding.classifier.passage.classes) == labelled
    found = understanding.search("Sind die veröffentlichten Zahlen eine Garantie für meine eigene Hardware?", k=11)
    # the learned probability is added to the passage's own similarity, and ranks
    assert all(p.score >= p.similarity for p in found)
    assert [p.score for p in found] == sorted((p.score for p in found), reverse=True)
    assert found[0].chunk.title == "Performance Information F.A.Q."  # "Results may vary."


def test_held_out_scores_report_intents_and_passages(understanding):
    from assistant.intent import held_out_scores

    examples = [e for e in load_corpus(CORPUS) if e.set in {"dev", "paraphrases", "written3-de", "written3-ja"}]
    vectors = understanding.embedder.encode([e.question for e in examples], kind="query")
    scores = held_out_scores(examples, vectors)
    assert set(scores["per_set"]) == {"dev", "paraphrases", "written3-de", "written3-ja"}
    assert scores["passage_questions"] == sum(1 for e in examples if e.label == "faq" and e.passage)
    assert 0.0 < scores["passage"] <= 1.0 and 0.0 < scores["overall"] <= 1.0


SETTINGS = {"prompt_tokens", "max_new_tokens", "iterations", "seconds"}


@pytest.mark.parametrize(("message", "expected"), [
    ("Corre el benchmark de LLM con 5 iteraciones, por favor.", {"iterations": 5}),
    ("LLMのベンチマーク：プロンプトは1024トークン、生成は256トークン、3回繰り返しで。",
     {"prompt_tokens": 1024, "max_new_tokens": 256, "iterations": 3}),
    ("Mesure le LLM avec un prompt de 256 tokens, génère 64 tokens, 4 itérations",
     {"prompt_tokens": 256, "max_new_tokens": 64, "iterations": 4}),
    ("测一下 LLM 的速度：输入 300 个 token，输出 50 个 token", {"prompt_tokens": 300, "max_new_tokens": 50}),
    ("Ejecuta resnet-50 en la CPU durante 15 segundos", {"seconds": 15}),
    # numbers of names, sizes and versions are no settings; a count of something else is none either
    ("Bench Llama-3-8b, mobilenet-v2 and a 224x224 model on 2024.1", {}),
    ("Wie schnell ist mein Rechner? Teste 3 Modelle", {}),
])
def test_the_numbers_of_a_run_request_are_read_as_its_settings_in_any_language(understanding, message, expected):
    assert understanding.slots.slots(message, SETTINGS) == expected


def test_a_text_embedded_again_gets_the_same_vector_and_callers_cannot_change_it(understanding):
    embedder = understanding.embedder
    text = "Wie oft werden die Benchmark-Ergebnisse aktualisiert?"
    first = embedder.encode([text])
    first[0, :] = 0.0  # a caller's array is its own
    again = embedder.encode([text])
    assert np.allclose(np.linalg.norm(again, axis=1), 1.0, atol=1e-3)
    assert np.allclose(again, embedder.encode([text, "another text"])[:1], atol=1e-5)

"""The workload catalog: typed rows from the table, lookups people type, exact aggregations."""

from __future__ import annotations

import re

import pytest

from assistant.catalog import normalize_size
from assistant.catalog_qa import (
    aggregate_filters,
    answer_about,
    answer_aggregate,
    asked_attribute,
    is_aggregate_question,
    model_like_name,
)
from tests.conftest import FAQ

RAW = FAQ.read_text(encoding="utf-8")
# Every table row straight from the .rst: name, network, task, input size
ROWS = re.findall(r"^\s+\* - `([^<`]+?) <([^>]+)>`__\n\s+- (.+)\n\s+- (.+)\n\s+- (.+)$", RAW, flags=re.M)


def test_fixture_reads_all_twenty_rows():
    assert len(ROWS) == 20


@pytest.mark.parametrize(("name", "url", "network", "task", "size"), ROWS)
def test_every_row_is_a_typed_record(catalog, name, url, network, task, size):
    entry = next(e for e in catalog if e.model == name)
    assert (entry.url, entry.network, entry.task, entry.input_size) == (url, network.strip(), task.strip(),
                                                                        size.strip())


@pytest.mark.parametrize(("name", "url", "network", "task", "size"), ROWS)
def test_every_row_is_found_by_its_exact_name_and_by_a_sloppy_spelling(catalog, name, url, network, task, size):
    assert catalog.find(name).model == name
    sloppy = name.lower().replace("-", " ").replace("_", " ")
    assert catalog.find(sloppy).model == name


@pytest.mark.parametrize(("typed", "expected"), [
    ("yolo", "yolov8n"), ("Phi-3 mini", "Phi3-4k-mini-Instruct"), ("SD 1.5", "Stable-Diffusion-V1-5"),
    ("mask rcnn", "mask_rcnn_resnet50_atrous_coco"), ("resnet50", "resnet-50"), ("ResNet 50", "resnet-50"),
    ("mobilenet v2", "mobilenet-v2"), ("bert", "bert-base-cased"), ("Qwen2.5", "Qwen-2.5-7B-Instruct"),
    ("llama 3.2", "Llama-3.2-3B-Instruct"), ("glm-4", "GLM4-9B-chat"), ("flux", "FLUX.1-schnell"),
    ("deepseek qwen 1.5b", "DeepSeek-R1-Distill-Qwen-1.5B"), ("ssd resnet34", "ssd-resnet34-1200-onnx"),
    ("mistral 7b", "Mistral-7b-Instruct-V0.2"), ("stable diffusion", "Stable-Diffusion-V1-5"),
])
def test_aliases_and_fuzzy_names(catalog, typed, expected):
    assert catalog.find(typed).model == expected


@pytest.mark.parametrize("typed", ["llama", "qwen", "deepseek"])
def test_ambiguous_names_resolve_to_nothing_but_list_candidates(catalog, typed):
    assert catalog.find(typed) is None
    assert len(catalog.match(typed)) >= 2


@pytest.mark.parametrize("text", ["How is latency measured?", "What is a good recipe for lasagna?",
                                  "Where can I find the models used in the performance benchmarks?",
                                  "rm -rf /", ""])
def test_no_model_is_seen_where_none_is_named(catalog, text):
    assert catalog.match(text) == []


def test_aggregations_agree_with_the_table(catalog):
    assert len(catalog) == len(ROWS)
    by_size = catalog.by_input_size()
    for _, _, _, _, size in ROWS:
        assert size.strip() in by_size
    assert sum(len(v) for v in catalog.by_task().values()) == 20
    assert sum(len(v) for v in catalog.by_publisher().values()) == 20
    expected_128k = {name for name, *_, size in ROWS if size.strip() == "128K"}
    assert {e.model for e in catalog.with_input_size("128 k")} == expected_128k
    assert normalize_size("4096") == normalize_size("4K") == "4k"
    assert normalize_size("224 × 224") == "224x224"


def test_answer_about_one_entry_states_the_exact_value(catalog):
    entry = catalog.find("yolov8n")
    answer = answer_about([entry], "input_size")
    assert entry.input_size in answer.text and entry.model in answer.text


def test_answer_about_several_entries_lists_each_value(catalog):
    entries = [m.entry for m in catalog.match("llama")]
    answer = answer_about(entries, "input_size")
    for entry in entries:
        assert f"{entry.model}: {entry.input_size}" in answer.text


@pytest.mark.parametrize(("question", "expected"), [
    ("Which models are benchmarked with a 128K input size?",
     {n for n, *_, s in ROWS if s.strip() == "128K"}),
    ("Which models use 224x224 inputs?", {n for n, *_, s in ROWS if s.strip() == "224x224"}),
    ("Which diffusion models are in the benchmark list?", {n for n, _, _, t, _ in ROWS if "Diffusion" in t}),
    ("List the object detection models.", {n for n, _, _, t, _ in ROWS if t.strip() == "object detection"}),
    ("Which models come from Meta AI?", {n for n, _, net, _, _ in ROWS if net.strip() == "Meta AI"}),
    ("models from meta ai in catalog?", {n for n, _, net, _, _ in ROWS if net.strip() == "Meta AI"}),
    ("which models link to open_model_zoo repo?", {n for n, url, *_ in ROWS if "/open_model_zoo/" in url}),
    ("list all of the DeepSeek-R1 distillations in the catalog", {n for n, *_ in ROWS if n.startswith("DeepSeek")}),
    ("Which networks in the roster are there to locate objects in images, i.e. detection?",
     {n for n, _, _, t, _ in ROWS if t.strip() == "object detection"}),
    # what the question rules out is left out
    ("Which language models have NOT an input size of 128K?",
     {n for n, _, _, t, s in ROWS
      if s.strip() != "128K" and ("language" in t or "Decoder" in t or "Transformer" in t)}),
    ("Except the LLMs and the diffusion models, which networks are in the list?",
     {n for n, _, _, t, _ in ROWS if t.strip() in {"classification", "object detection", "object instance segmentation",
                                                   "question / answer"}}),
])
def test_aggregate_answers_list_exactly_the_matching_rows(catalog, question, expected):
    answer = answer_aggregate(question, catalog, aggregate_filters(question, catalog))
    assert {e.model for e in answer.entries} == expected
    for name in expected:
        assert name in answer.text


def test_count_question_gives_the_number(catalog):
    question = "How many models are in the benchmark catalog?"
    answer = answer_aggregate(question, catalog, aggregate_filters(question, catalog))
    assert answer.text.startswith(f"{len(ROWS)} models")


@pytest.mark.parametrize(("text", "resembles", "mention"), [
    ("What is the input size of Gemma-2-27B?", "Gemma-2-9B", "Gemma-2-27B"),
    ("input size of llama 3.1 8b", "Llama-3-8b", "llama 3.1 8b"),
    ("what does resnet-101 take as input", "resnet-50", "resnet-101"),
    ("mobilenet-v3 task", "mobilenet-v2", "mobilenet-v3"),
    ("input size of stable diffusion xl", "Stable-Diffusion-V1-5", "stable diffusion xl"),
    ("phi-3-medium context", "Phi3-4k-mini-Instruct", "phi-3-medium"),
    ("flux dev", "FLUX.1-schnell", "flux dev"),
    ("bert-large-uncased", "bert-base-cased", "bert-large-uncased"),
    ("what is yolov8s?", "yolov8n", "yolov8s"),  # a size letter of the family
    ("input size of yolov8 large", "yolov8n", "yolov8l"),
])
def test_another_model_of_a_family_is_not_taken_for_the_catalog_one(catalog, text, resembles, mention):
    entry = next(e for e in catalog if e.model == resembles)
    assert catalog.other_model(text, entry) == mention
    assert catalog.find(text) is not entry


@pytest.mark.parametrize(("text", "model"), [
    ("llama3 8b", "Llama-3-8b"), ("llama 3 8b instruct", "Llama-3-8b"), ("SD 1.5", "Stable-Diffusion-V1-5"),
    ("Stable Diffusion v1.5", "Stable-Diffusion-V1-5"), ("Phi 3 mini", "Phi3-4k-mini-Instruct"),
    ("yolo v8 nano", "yolov8n"), ("the YOLOv8 nano workload", "yolov8n"), ("GLM 4 9B chat", "GLM4-9B-chat"),
    ("gemma 2 9b it", "Gemma-2-9B"),
    ("Run bert-base-cased for 20 seconds", "bert-base-cased"), ("resnet50 on my cpu 3 times", "resnet-50"),
    ("DeepSeek R1 Distill Qwen 1.5B", "DeepSeek-R1-Distill-Qwen-1.5B"), ("resnet-50 int8", "resnet-50"),
])
def test_the_catalog_models_own_names_are_no_other_model(catalog, text, model):
    entry = next(e for e in catalog if e.model == model)
    assert catalog.other_model(text, entry) is None
    assert catalog.find(text) is entry


def _aggregate(catalog, question):
    return answer_aggregate(question, catalog, aggregate_filters(question, catalog))


def test_a_publisher_spelled_several_ways_in_the_table_finds_all_its_rows(catalog):
    answer = _aggregate(catalog, "which of the benchmark models come from HuggingFace?")
    expected = {n for n, _, net, _, _ in ROWS if net.strip() in {"Huggingface", "Hugginface"}}
    assert expected <= {e.model for e in answer.entries} and len(expected) >= 5


def test_a_family_word_wins_over_the_tasks_that_explain_it_and_one_task_over_its_family(catalog):
    vision = _aggregate(catalog, "How many vision models (classification, detection, segmentation) are listed?")
    assert {e.category for e in vision.entries} == {"vision"} and len(vision.entries) == 5
    llm = _aggregate(catalog, "How many of the benchmarked models are auto regressive language models?")
    assert {e.task for e in llm.entries} == {"Auto regressive language"}


@pytest.mark.parametrize(("question", "count"), [
    ("Anything in the list with a 32K input size?", 1), ("list every model you benchmark", len(ROWS)),
])
def test_other_phrasings_of_a_question_over_the_table(catalog, question, count):
    assert is_aggregate_question(question)
    assert len(_aggregate(catalog, question).entries) == count


def test_a_single_match_reads_in_the_singular(catalog):
    assert "1 model in the benchmark catalog uses input size 32K" in _aggregate(catalog, "Which models use 32K?").text


@pytest.mark.parametrize(("question", "expected"), [
    ("And which language models have the shortest context window?", {"Llama-2-7b-chat", "Phi3-4k-mini-Instruct"}),
    ("Which vision model has the largest input resolution?", {"ssd-resnet34-1200-onnx"}),
])
def test_largest_and_smallest_input_sizes(catalog, question, expected):
    assert is_aggregate_question(question)
    assert {e.model for e in _aggregate(catalog, question).entries} == expected


def test_a_model_named_next_to_another_of_its_family_is_still_itself(catalog):
    llama2 = next(e for e in catalog if e.model == "Llama-2-7b-chat")
    assert catalog.other_model("Llama-3-8b vs Llama-2-7b-chat", llama2) is None


def test_a_size_said_after_a_name_is_a_value_not_a_version(catalog):
    flux = next(e for e in catalog if e.model == "FLUX.1-schnell")
    assert catalog.other_model("Is the input size of FLUX.1-schnell 77, like the other one?", flux) is None
    resnet = next(e for e in catalog if e.model == "resnet-50")
    assert catalog.other_model("input size of resnet 101?", resnet) is not None  # a version the table lacks


def test_a_lone_number_elsewhere_does_not_name_a_model(catalog):
    llama32 = next(e for e in catalog if e.model == "Llama-3.2-3B-Instruct")  # "2" of "Gaudi 2" is not its 3.2
    assert catalog.other_model("tokens per second of Llama-3-70B on a Gaudi 2", llama32) == "Llama-3-70B"


@pytest.mark.parametrize(("question", "expected"), [
    ("anything from Google?", {"Gemma-2-9B"}),  # the table says "Hugginface"; the link says google
    ("Which models come from Microsoft?", {"Phi3-4k-mini-Instruct"}),
    ("Which diffusion models are in the benchmark list?", {"Stable-Diffusion-V1-5", "FLUX.1-schnell"}),
])
def test_a_publisher_is_also_found_in_the_models_link(catalog, question, expected):
    assert is_aggregate_question(question)
    assert {e.model for e in _aggregate(catalog, question).entries} == expected


def test_several_publishers_in_one_question_are_all_kept(catalog):
    answer = _aggregate(catalog, "Which models are from Microsoft or Google?")
    assert {e.model for e in answer.entries} == {"Phi3-4k-mini-Instruct", "Gemma-2-9B"}
    assert "come from Microsoft or Google" in answer.text or "come from Google or Microsoft" in answer.text


@pytest.mark.parametrize(("question", "expected"), [
    ("Which vision models have an input larger than 224x224?",
     {"yolov8n", "ssd-resnet34-1200-onnx", "mask_rcnn_resnet50_atrous_coco"}),
    ("Which LLMs have a context of at most 8K?",
     {"Gemma-2-9B", "Llama-2-7b-chat", "Llama-3-8b", "Phi3-4k-mini-Instruct"}),
    ("Welche Modelle haben eine Eingabegröße über 32K?",
     {n for n, _, _, _, size in ROWS if size.strip() == "128K"}),
    ("入力サイズが 608x608 以上のモデルは？", {"yolov8n", "ssd-resnet34-1200-onnx", "mask_rcnn_resnet50_atrous_coco"}),
])
def test_a_size_compared_with_selects_the_sizes_on_its_side_of_the_same_kind(catalog, question, expected):
    answer = _aggregate(catalog, question)
    assert {e.model for e in answer.entries} == expected, answer.text
    assert "use input size" not in answer.text  # a comparison is not an equality


def test_the_largest_image_resolution_compares_images_only(catalog):
    answer = _aggregate(catalog, "what's the biggest image resolution in the list, in total pixels?")
    assert [e.model for e in answer.entries] == ["ssd-resnet34-1200-onnx"]


def test_the_asked_sentence_decides_the_attribute():
    from assistant.catalog_qa import asked_attribute
    assert asked_attribute("It is the right one for that kind of model, I think. What should we use for LLMs?") is None
    assert asked_attribute("what res does the ssd resnet34 onnx model run at?") == "input_size"


def test_a_catalog_name_inside_a_longer_one_is_the_longer_one(catalog):
    assert catalog.find("the Mask R-CNN ResNet-50 atrous model").model == "mask_rcnn_resnet50_atrous_coco"
    assert catalog.find("resnet-50").model == "resnet-50"


def test_a_pixel_count_question_lists_the_model_with_its_size(catalog):
    answer = _aggregate(catalog, "Among the vision workloads, which one has the highest pixel count per input?")
    assert "ssd-resnet34-1200-onnx" in answer.text and "1200x1200" in answer.text


def test_an_answer_about_one_field_also_gives_the_models_link(catalog):
    resnet = next(e for e in catalog if e.model == "resnet-50")
    answer = answer_about([resnet], "network")
    assert "ResNet-50_v1_ILSVRC-2012" in answer.text and resnet.url in answer.text


@pytest.mark.parametrize("question", [
    "what performance-per-watt figure was recorded in the most recent benchmark round?",  # "most", not of inputs
    "how many epochs should I train yolov8n?", "how many inference streams were configured?",
    "How many tokens per second does Llama-3-70B get on a Gaudi 2?",
])
def test_questions_with_extreme_or_count_words_about_other_things_are_not_over_the_table(question):
    assert not is_aggregate_question(question)


@pytest.mark.parametrize(("question", "name"), [
    ("input size of whisper-large-v3", "whisper-large-v3"), ("task of EfficientNet-Lite", "EfficientNet-Lite"),
    ("the Whisper-Large model", "Whisper-Large"),
    ("the BERT question-answering benchmark", ""), ("KV-cache sizing depends on context", ""),
    ("Instance segmentation is memory-bound for us", ""),
])
def test_model_like_names_are_names_not_hyphenated_words(question, name):
    assert model_like_name(question) == name


def test_which_tool_was_used_for_asks_no_models_task():
    assert asked_attribute("which tool did you use for the CNN models?") is None
    assert asked_attribute("what is yolov8n used for?") == "task"

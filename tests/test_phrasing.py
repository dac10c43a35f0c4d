"""The asked clause of a message: background and politeness removed, the ask kept whole."""

import pytest

from assistant.phrasing import asked_clause, expand_shorthand, is_claim


@pytest.mark.parametrize(("message", "clause"), [
    ("We're sizing edge boxes for a retail deployment, so I'd appreciate knowing the input resolution of yolov8n.",
     "the input resolution of yolov8n."),
    ("Our NLP latency budget depends on sequence length; what input size is bert-base-cased run with?",
     "what input size is bert-base-cased run with?"),
    ("For capacity planning on the detector side, what input resolution does the SSD ResNet-34 benchmark use?",
     "what input resolution does the SSD ResNet-34 benchmark use?"),
    ("For our licensing review, could you confirm which organization publishes GLM-4 9B chat?",
     "which organization publishes GLM-4 9B chat?"),
    ("For a retail rollout I'd like a shortlist of every model the catalog lists under object detection.",
     "list every model the catalog lists under object detection."),
    ("Setting the LLMs aside, could you enumerate the computer-vision networks in the table?",
     "enumerate the computer-vision networks in the table?"),
])
def test_background_and_politeness_are_not_the_ask(message, clause):
    assert asked_clause(message) == clause


@pytest.mark.parametrize("message", [
    "What is the input size, in pixels, of resnet-50?",  # commas inside the ask
    "What is the input size of resnet-50, and what is its task?",  # two asks
    "how many deepseek distill models do you have, which ones?",  # the ask opens the message
    "Tell me about Phi-3 mini",  # "tell me" is the ask itself
])
def test_an_ask_without_background_stays_whole(message):
    assert asked_clause(message) == message


def test_among_is_part_of_the_ask_not_background():
    clause = asked_clause("Cost scales with pixels, so among the vision networks, which one has the largest input?")
    assert clause == "among the vision networks, which one has the largest input?"


def test_a_trailing_remark_is_not_taken_for_the_ask():
    assert asked_clause("stable-diffusion-v1-5 input size please, i see only a weird number").startswith(
        "stable-diffusion-v1-5 input size")


@pytest.mark.parametrize(("text", "expanded"), [
    ("how ofen do u publish new perf numbers", "how ofen do you publish new performance numbers"),
    ("pls run yolov8n thruput test", "please run yolov8n throughput test"),
    ("list classification nets u benchmark", "list classification networks you benchmark"),
])
def test_chat_shorthand_is_spelled_out(text, expanded):
    assert expand_shorthand(text) == expanded


@pytest.mark.parametrize("text", ["run it in u8 precision", "the U.S. office", "llm_bench", "w/o changes",
                                  "a ur-text", "PERF_COUNT"])
def test_shorthand_inside_other_words_is_left_alone(text):
    assert expand_shorthand(text) == text


@pytest.mark.parametrize(("message", "claim"), [
    ("Llama-2-7b-chat uses an 8K context in the catalog, doesn't it?",
     "Llama-2-7b-chat uses an 8K context in the catalog?"),
    ("Am I right that the catalog has exactly two DeepSeek distilled models?",
     "the catalog has exactly two DeepSeek distilled models?"),
    ("Is it true that yolov8n runs at 608x608?", "yolov8n runs at 608x608?"),
])
def test_a_claim_to_confirm_is_the_ask(message, claim):
    assert is_claim(message)
    assert asked_clause(message) == claim


def test_a_question_is_no_claim():
    assert not is_claim("What is the input size of yolov8n?")

"""The FAQ's words for a user's words reach the keyword side of retrieval."""

from __future__ import annotations

from assistant.synonyms import faq_words


def test_user_words_map_to_the_faqs_words_once_each():
    assert faq_words("How were the models picked, and on what basis? Who decided?") == "chosen"
    assert faq_words("Who sells the machines you used?") == "purchase hardware"
    assert faq_words("How is latency measured?") == ""

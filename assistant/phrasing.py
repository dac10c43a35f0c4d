"""What a message asks, apart from how it is said: chat shorthand spelled out, the asked sentence, and the
asked clause without the background and the politeness around it.

"We're sizing edge boxes for a retail rollout, so I'd appreciate knowing the input resolution of yolov8n."
asks "the input resolution of yolov8n"; "hi, how ofen do u publish new perf numbers?" asks how often
"you publish new performance numbers". Routing looks at the asked clause, so background words neither
hide the ask nor count as another one.
"""

from __future__ import annotations

import re

# shorthand of chat messages, as whole words (lower case); not ambiguous ones like "bs" or "r"
_SHORTHAND = {
    "u": "you", "ur": "your", "pls": "please", "plz": "please", "thx": "thanks", "ty": "thanks",
    "perf": "performance", "hw": "hardware", "sw": "software", "img": "image", "imgs": "images",
    "ctx": "context", "nets": "networks", "thruput": "throughput", "tput": "throughput", "abt": "about",
    "wat": "what", "pic": "image", "pics": "images", "w/": "with", "b/c": "because", "bc": "because",
    "nums": "numbers", "num": "number", "mdl": "model", "mdls": "models",
}
_SHORTHAND_WORD = re.compile(r"(?<![\w/.-])(" + "|".join(re.escape(w) for w in sorted(_SHORTHAND, key=len,
                                                                                       reverse=True))
                             + r")(?![\w/-]|\.\w)", re.I)


# precisions in words ("8-bit integer", "32-bit float") as the FAQ writes them
_PRECISION_WORDS = [(re.compile(r"\b8[- ]?bit(?: integers?)?\b", re.I), "INT8"),
                    (re.compile(r"\b16[- ]?bit float(?:ing[- ]point)?\b", re.I), "FP16"),
                    (re.compile(r"\b32[- ]?bit float(?:ing[- ]point)?\b", re.I), "FP32")]


def expand_shorthand(text: str) -> str:
    """`text` with chat shorthand spelled out ("pls run u model" → "please run you model") and precisions
    named as the FAQ names them ("8-bit" → "INT8")."""
    text = _SHORTHAND_WORD.sub(lambda m: _SHORTHAND[m.group(1).lower()], text)
    for pattern, name in _PRECISION_WORDS:
        text = pattern.sub(name, text)
    return text


# a sentence ends at . ? ! and a space, but not after "e.g." or "i.e."
_SENTENCE_END = re.compile(r"(?<=[.?!])(?<!\be\.g\.)(?<!\bi\.e\.)(?<!\betc\.)(?<!\bvs\.)\s+", re.I)


def asked_sentence(text: str) -> str:
    """The last sentence that ends with a question mark, or the whole text when none does."""
    asked = [s for s in _SENTENCE_END.split(text.strip()) if s.endswith("?")]
    return asked[-1] if asked else text


# how an ask opens: a question word, an auxiliary, or a request
_ASK_OPENING = re.compile(
    r"(?:which|what|how|who|whose|where|when|why|is|are|was|were|does|do|did|can|could|would|will|should|may"
    r"|list|name|enumerate|show|give|tell|share|confirm|provide|please|any|anything|i'd|i would|i need|i want"
    r"|i'm (?:looking|trying|curious)|let me know)\b", re.I)
# where background ends and the ask begins: a semicolon, colon, dash or ", so" before words that ask
_BOUNDARY = re.compile(r";\s*|:\s+|\s[-–—]\s+|,\s+so\s+", re.I)
_ASKING = re.compile(r"\b(?:which|what|how|who|whose|where|when|why|list|enumerate|confirm|tell|share|give|show"
                     r"|i'd|i would|could you|can you|would you)\b|\?", re.I)
# an introductory phrase before a comma ("For capacity planning on the detector side, what ...")
_INTRODUCTION = re.compile(r"^(?:for|before|after|since|as|because|given|setting|while|to|ahead of|with|in|from"
                           r"|when|once|if|except|excluding|besides|apart from|aside from|other than|leaving out"
                           r"|not counting|ignoring)\b[^,]*,\s+", re.I)
# a request that opens an ask wherever it stands ("For a rollout I'd like a list of ...")
_REQUEST = re.compile(r"\b(?:i'd|i would|could you|can you|would you)\b", re.I)
_POLITE = re.compile(
    r"^(?:(?:please|kindly|so|and|also|ok|okay|hi|hello|hey)[,!]?\s+"
    r"|(?:could|can|would|will) you(?: please)?(?: (?:confirm|let me know|check|say|clarify|remind me))?"
    r"(?: (?:whether|if))?\s+"
    r"|i(?:'d| would)? (?:like|love|appreciate|want|need)(?: (?:to (?:know|see|learn|understand|confirm|get)"
    r"|knowing|confirmation of|confirming))?(?: (?:whether|if))?\s+"
    r"|(?:do you know|let me know|i'm (?:curious|wondering))(?: (?:whether|if))?\s+)",
    re.I)
# "I'd like a shortlist of every model ..." asks for a list
_LIST_REQUEST = re.compile(r"^(?:a |the )?(?:short[- ]?list|list(?:ing)?|rundown|overview|enumeration)"
                           r"(?: of)?\s+", re.I)


# a claim to confirm: the claim is the ask ("Is it true that X?", "X, right?")
_CLAIM_OPENING = re.compile(r"^(?:is it (?:true|correct|right) that|am i (?:right|correct)(?: in thinking)?(?: that)?"
                            r"|do i understand (?:it )?correctly(?: that)?|correct me if i'm wrong[,:]?"
                            r"|i (?:think|believe|heard|read|assume)(?: that)?|so,?)\s+", re.I)
_CLAIM_TAG = re.compile(r",?\s*(?:right|correct|true|yes|no|isn't it|aren't they|doesn't it|don't they|is that so"
                        r"|is that right|no\?)\s*\?\s*$", re.I)


def asked_clause(text: str) -> str:
    """The ask of a message without its background and politeness: "We only run vision on this box; could you
    list the detection models?" → "list the detection models?"."""
    sentence = asked_sentence(text)
    if sentence is text:  # no question mark: the last sentence that opens like an ask
        sentences = [s for s in _SENTENCE_END.split(text.strip()) if s]
        sentence = next((s for s in reversed(sentences) if _opens_ask(s)), text.strip())
    start = 0
    for boundary in _BOUNDARY.finditer(sentence):
        if _ASKING.search(sentence[boundary.end():]):
            start = boundary.end()
    clause = sentence[start:]
    if (introduction := _INTRODUCTION.match(clause)) and _opens_ask(clause[introduction.end():]):
        clause = clause[introduction.end():]
    if not _opens_ask(clause) and (request := _REQUEST.search(clause)):
        clause = clause[request.start():]
    requested = False
    while (polite := _POLITE.match(clause)) and polite.end() < len(clause):
        clause, requested = clause[polite.end():], True
    if requested and (listing := _LIST_REQUEST.match(clause)):  # "I'd like a shortlist of ...", not "The list of"
        clause = "list " + clause[listing.end():]
    if claim := _CLAIM_OPENING.match(clause):
        clause = clause[claim.end():]
    return _CLAIM_TAG.sub("?", clause).strip()


def is_claim(text: str) -> bool:
    """Phrased as a claim to confirm ("X is Y, right?", "Is it true that X is Y?")."""
    sentence = asked_sentence(text).strip()
    return bool(_CLAIM_OPENING.match(sentence) or _CLAIM_TAG.search(sentence))


def _opens_ask(text: str) -> bool:
    return bool(_ASK_OPENING.match(text.lstrip()))


__all__ = ["asked_clause", "asked_sentence", "expand_shorthand", "is_claim"]


_PART_BREAK = re.compile(r"(?<=\?)\s+|[,;]\s+(?:and|but|also|plus)\s+(?=(?:is|are|does|do|did|can|will|would|should"
                         r"|how|what|when|where|which|who|why|has|have)\b)", re.I)
_INTERROGATIVE = re.compile(r"(?:^|:)\W*(?:is|are|does|do|did|can|could|will|would|should|how|what|when|where|which|who"
                            r"|why|has|have)\b", re.I)


def question_parts(text: str) -> list[str]:
    """The questions a message asks, in order: "How often is it refreshed, and is the list going to grow?" →
    ["How often is it refreshed", "is the list going to grow?"]; statements between them are left out."""
    parts = [p.strip() for p in _PART_BREAK.split(text) if p and p.strip()]
    asked = [p for p in parts if p.endswith("?") or _INTERROGATIVE.search(p)]
    return asked or [text]

"""The language of a message, and the assistant's own sentences in that language.

Writing systems decide first (kana → Japanese, hangul → Korean, Han alone → Chinese); Latin
script goes to lingua's detector, restricted to the languages the assistant speaks. A short or
mixed message ("benchmark resnet-50") stays English unless the detector is sure, since model
names and English technical words dominate such messages. The FAQ itself stays in English:
its quotes come with a line in the user's language saying so.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Collection
from typing import Any

LANGUAGES = ("en", "de", "fr", "es", "it", "pt", "zh", "ja", "ko")
_KANA = re.compile(r"[\u3040-\u30ff\u31f0-\u31ff]")
_HANGUL = re.compile(r"[\uac00-\ud7af\u1100-\u11ff]")
_HAN = re.compile(r"[\u4e00-\u9fff\u3400-\u4dbf]")
_LATIN_WORD = re.compile(r"[^\W\d_]{2,}")
_SURE = 0.8  # lingua's confidence needed to leave English for a Latin-script message
_RULED_OUT = 0.1  # ... unless it gives English at most this
_detector: Any = None
_detector_lock = threading.Lock()


def _lingua() -> Any:
    global _detector
    with _detector_lock:
        if _detector is None:
            from lingua import Language, LanguageDetectorBuilder

            _detector = LanguageDetectorBuilder.from_languages(
                Language.ENGLISH, Language.GERMAN, Language.FRENCH, Language.SPANISH, Language.ITALIAN,
                Language.PORTUGUESE).build()
        return _detector


def detect(text: str, *, jargon: Collection[str] = ()) -> str:
    """ISO 639-1 code of the message's language (one of LANGUAGES; "en" when unsure). `jargon`: the
    knowledge's own English words (benchmark, latency, tokens), which messages in any language borrow."""
    if _KANA.search(text):
        return "ja"
    if _HANGUL.search(text):
        return "ko"
    if _HAN.search(text):
        return "zh"
    if len(_LATIN_WORD.findall(text)) < 3:
        return "en"
    code, sure = _latin_language(text)
    if code == "en" or sure:
        return code
    # English jargon pulls a Spanish sentence towards English: the message's own words decide
    own = " ".join(w for w in _LATIN_WORD.findall(text) if w.lower() not in jargon)
    if jargon and len(_LATIN_WORD.findall(own)) >= 3:
        again, sure = _latin_language(own)
        if again == code and sure:
            return code
    return "en"


def _latin_language(text: str) -> tuple[str, bool]:
    """lingua's best language and whether it is sure of it: confident, or English ruled out."""
    values = _lingua().compute_language_confidence_values(text)
    best = values[0]
    code = best.language.iso_code_639_1.name.lower()
    english = next((v.value for v in values if v.language.iso_code_639_1.name == "EN"), 0.0)
    # English words (benchmark, DeepSeek, the model names) pull a French sentence towards English; the
    # detector ruling English out is as good as being sure of the other language
    return code, best.value >= _SURE or english <= _RULED_OUT


def warm_up() -> None:
    """Load the detector's models now (about 2 s) rather than on the first foreign message."""
    detect("Wie wird die Latenz gemessen, wenn man die Ergebnisse vergleicht?")


_TEXTS: dict[str, dict[str, str]] = {
    "refusal": {
        "de": "Ich beantworte nur Fragen zu den OpenVINO-Leistungsbenchmarks (der Performance-FAQ und ihrem "
              "Modellkatalog) und führe Benchmarks auf diesem Rechner aus. Dazu finde ich in meinen Quellen "
              "nichts, also rate ich nicht.",
        "fr": "Je réponds uniquement aux questions sur les benchmarks de performance d'OpenVINO (la FAQ et son "
              "catalogue de modèles) et je lance des benchmarks sur cette machine. Mes sources ne disent rien "
              "à ce sujet, donc je ne devine pas.",
        "es": "Solo respondo preguntas sobre los benchmarks de rendimiento de OpenVINO (la FAQ y su catálogo de "
              "modelos) y ejecuto benchmarks en esta máquina. Mis fuentes no dicen nada sobre eso, así que no "
              "voy a adivinar.",
        "it": "Rispondo solo a domande sui benchmark di prestazioni di OpenVINO (la FAQ e il suo catalogo di "
              "modelli) ed eseguo benchmark su questa macchina. Le mie fonti non dicono nulla al riguardo, "
              "quindi non tiro a indovinare.",
        "pt": "Só respondo a perguntas sobre os benchmarks de desempenho do OpenVINO (a FAQ e o seu catálogo de "
              "modelos) e executo benchmarks nesta máquina. As minhas fontes não dizem nada sobre isso, por "
              "isso não vou adivinhar.",
        "zh": "我只回答有关 OpenVINO 性能基准测试（性能 FAQ 及其模型目录）的问题，并可在本机运行基准测试。"
              "我的资料中没有相关内容，所以不作猜测。",
        "ja": "OpenVINO の性能ベンチマーク（パフォーマンス FAQ とそのモデル一覧）に関する質問にのみ答え、"
              "このマシンでベンチマークを実行します。手元の資料にはその情報がないため、推測はしません。",
        "ko": "OpenVINO 성능 벤치마크(성능 FAQ와 모델 카탈로그)에 관한 질문에만 답하고 이 컴퓨터에서 "
              "벤치마크를 실행합니다. 제 자료에는 그에 관한 내용이 없어서 추측하지 않겠습니다.",
    },
    "faq_in_english": {
        "de": "Die FAQ beantwortet das (auf Englisch) unter \"{title}\":",
        "fr": "La FAQ y répond (en anglais) sous « {title} » :",
        "es": "La FAQ lo responde (en inglés) en \"{title}\":",
        "it": "La FAQ risponde (in inglese) sotto \"{title}\":",
        "pt": "A FAQ responde a isto (em inglês) em \"{title}\":",
        "zh": "FAQ 在“{title}”下（英文）回答了这个问题：",
        "ja": "FAQ は「{title}」で（英語で）次のように答えています：",
        "ko": "FAQ는 \"{title}\" 항목에서 (영어로) 이렇게 답합니다:",
    },
    "field": {  # "{model}: {field} {value}"
        "de": "Laut Katalog der FAQ: {model} – {field}: {value}.",
        "fr": "D'après le catalogue de la FAQ : {model} – {field} : {value}.",
        "es": "Según el catálogo de la FAQ: {model} – {field}: {value}.",
        "it": "Secondo il catalogo della FAQ: {model} – {field}: {value}.",
        "pt": "Segundo o catálogo da FAQ: {model} – {field}: {value}.",
        "zh": "根据 FAQ 的模型目录：{model} 的{field}为 {value}。",
        "ja": "FAQ のモデル一覧によると、{model} の{field}は {value} です。",
        "ko": "FAQ 카탈로그에 따르면 {model}의 {field}은(는) {value}입니다.",
    },
    "matches": {
        "de": "Passende Modelle im Katalog ({count}):",
        "fr": "Modèles du catalogue correspondants ({count}) :",
        "es": "Modelos del catálogo que coinciden ({count}):",
        "it": "Modelli del catalogo corrispondenti ({count}):",
        "pt": "Modelos do catálogo correspondentes ({count}):",
        "zh": "目录中符合条件的模型（{count} 个）：",
        "ja": "条件に合うモデル（{count} 件）：",
        "ko": "조건에 맞는 카탈로그 모델({count}개):",
    },
    "plan": {
        "de": "Ich würde {tool} mit {arguments} ausführen. Bestätigen Sie, um zu starten.",
        "fr": "Je lancerais {tool} avec {arguments}. Confirmez pour démarrer.",
        "es": "Ejecutaría {tool} con {arguments}. Confirme para empezar.",
        "it": "Eseguirei {tool} con {arguments}. Confermi per avviare.",
        "pt": "Executaria {tool} com {arguments}. Confirme para começar.",
        "zh": "我将使用 {arguments} 运行 {tool}。请确认后开始。",
        "ja": "{arguments} で {tool} を実行します。開始するには確認してください。",
        "ko": "{arguments}(으)로 {tool}을(를) 실행하겠습니다. 시작하려면 확인하세요.",
    },
    "result": {
        "de": "Ergebnis der Messung auf diesem Rechner (Details auf Englisch):",
        "fr": "Résultat de la mesure sur cette machine (détails en anglais) :",
        "es": "Resultado de la medición en esta máquina (detalles en inglés):",
        "it": "Risultato della misura su questa macchina (dettagli in inglese):",
        "pt": "Resultado da medição nesta máquina (detalhes em inglês):",
        "zh": "本机测量结果（详细信息为英文）：",
        "ja": "このマシンでの測定結果（詳細は英語）：",
        "ko": "이 컴퓨터에서 측정한 결과(세부 정보는 영어):",
    },
}

_FIELDS: dict[str, dict[str, str]] = {
    "input_size": {"de": "Eingabegröße", "fr": "taille d'entrée", "es": "tamaño de entrada",
                   "it": "dimensione di input", "pt": "tamanho de entrada", "zh": "输入尺寸", "ja": "入力サイズ",
                   "ko": "입력 크기"},
    "task": {"de": "Aufgabe", "fr": "tâche", "es": "tarea", "it": "compito", "pt": "tarefa", "zh": "任务",
             "ja": "タスク", "ko": "작업"},
    "network": {"de": "öffentliches Netz", "fr": "réseau public", "es": "red pública", "it": "rete pubblica",
                "pt": "rede pública", "zh": "公开网络", "ja": "公開ネットワーク", "ko": "공개 네트워크"},
    "url": {"de": "Link", "fr": "lien", "es": "enlace", "it": "link", "pt": "link", "zh": "链接", "ja": "リンク",
            "ko": "링크"},
}


def text(key: str, lang: str, **values: str) -> str | None:
    """The assistant's sentence `key` in `lang`, or None for English (the caller's own wording)."""
    template = _TEXTS[key].get(lang)
    return None if template is None else template.format(**values)


def field_name(field: str, lang: str) -> str:
    """A catalog column's name in `lang`."""
    return _FIELDS.get(field, {}).get(lang, field.replace("_", " "))

"""Whisper's languages: ISO 639-1 (or 639-3) codes and their English names, in token order."""

from __future__ import annotations

from types import MappingProxyType

LANGUAGES = MappingProxyType(
    {
        "en": "english", "zh": "chinese", "de": "german", "es": "spanish", "ru": "russian",
        "ko": "korean", "fr": "french", "ja": "japanese", "pt": "portuguese", "tr": "turkish",
        "pl": "polish", "ca": "catalan", "nl": "dutch", "ar": "arabic", "sv": "swedish",
        "it": "italian", "id": "indonesian", "hi": "hindi", "fi": "finnish", "vi": "vietnamese",
        "he": "hebrew", "uk": "ukrainian", "el": "greek", "ms": "malay", "cs": "czech",
        "ro": "romanian", "da": "danish", "hu": "hungarian", "ta": "tamil", "no": "norwegian",
        "th": "thai", "ur": "urdu", "hr": "croatian", "bg": "bulgarian", "lt": "lithuanian",
        "la": "latin", "mi": "maori", "ml": "malayalam", "cy": "welsh", "sk": "slovak",
        "te": "telugu", "fa": "persian", "lv": "latvian", "bn": "bengali", "sr": "serbian",
        "az": "azerbaijani", "sl": "slovenian", "kn": "kannada", "et": "estonian",
        "mk": "macedonian", "br": "breton", "eu": "basque", "is": "icelandic", "hy": "armenian",
        "ne": "nepali", "mn": "mongolian", "bs": "bosnian", "kk": "kazakh", "sq": "albanian",
        "sw": "swahili", "gl": "galician", "mr": "marathi", "pa": "punjabi", "si": "sinhala",
        "km": "khmer", "sn": "shona", "yo": "yoruba", "so": "somali", "af": "afrikaans",
        "oc": "occitan", "ka": "georgian", "be": "belarusian", "tg": "tajik", "sd": "sindhi",
        "gu": "gujarati", "am": "amharic", "yi": "yiddish", "lo": "lao", "uz": "uzbek",
        "fo": "faroese", "ht": "haitian creole", "ps": "pashto", "tk": "turkmen", "nn": "nynorsk",
        "mt": "maltese", "sa": "sanskrit", "lb": "luxembourgish", "my": "myanmar",
        "bo": "tibetan", "tl": "tagalog", "mg": "malagasy", "as": "assamese", "tt": "tatar",
        "haw": "hawaiian", "ln": "lingala", "ha": "hausa", "ba": "bashkir", "jw": "javanese",
        "su": "sundanese", "yue": "cantonese",
    }
)  # fmt: skip
"""Language code -> lower-case English name, as OpenAI's verbose_json ``language`` field uses."""

_NAME_TO_CODE = MappingProxyType({name: code for code, name in LANGUAGES.items()})


def language_name(code: str) -> str:
    """Return the English name of a Whisper language code (the code itself if unknown)."""
    return LANGUAGES.get(code, code)


def normalize_language(value: str) -> str:
    """Map a code or English name (any case) to the Whisper code.

    Raises:
        KeyError: if ``value`` names no Whisper language.
    """
    key = value.strip().lower()
    if key in LANGUAGES:
        return key
    return _NAME_TO_CODE[key]

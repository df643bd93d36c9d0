"""Whisper's languages: ISO 639-1 (or 639-3) codes and their English names, in token order,
and the one reader of a language as users write it (codes, names, BCP 47 tags, locales)."""

from __future__ import annotations

from types import MappingProxyType

import langcodes

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

_WHISPER_ALIASES = MappingProxyType(
    {
        "burmese": "my", "valencian": "ca", "flemish": "nl", "haitian": "ht",
        "letzeburgesch": "lb", "pushto": "ps", "panjabi": "pa", "moldavian": "ro",
        "moldovan": "ro", "sinhalese": "si", "castilian": "es", "mandarin": "zh",
    }
)  # fmt: skip
"""More English names Whisper itself accepts (``TO_LANGUAGE_CODE`` in openai-whisper's
``whisper/tokenizer.py``)."""

_NAME_TO_CODE = MappingProxyType(
    {**{name: code for code, name in LANGUAGES.items()}, **_WHISPER_ALIASES}
)

_STANDARD_TO_WHISPER = MappingProxyType({"jv": "jw", "fil": "tl", "nb": "no"})
"""Standard codes whose language Whisper knows under another code: Javanese is ``jv`` in
ISO 639-1 but ``jw`` in Whisper; the IANA registry (and so :mod:`langcodes`) folds ``tl`` into
``fil`` (Filipino) and Whisper's Norwegian is ``no``, of which Bokmål (``nb``) is the
written standard."""

_EXAMPLES = "a code such as 'en', a BCP 47 tag such as 'en-US', or a name such as 'english'"


class UnknownLanguageError(ValueError):
    """A value that names no language Whisper knows; its message says why, for users."""


def language_name(code: str) -> str:
    """Return the English name of a Whisper language code (the code itself if unknown)."""
    return LANGUAGES.get(code, code)


def normalize_language(value: str) -> str:
    """Map a language, however it is spelled, to Whisper's code for it.

    Accepted spellings, any case, surrounding spaces ignored:

    - Whisper's own codes (``en``, ``haw``, ``yue``, ``jw``) and English names (``english``,
      ``haitian creole``), with the extra names openai-whisper accepts (``mandarin``);
    - BCP 47 language tags (RFC 5646): ``en-US``, ``zh-Hant-TW``, ``pt-BR``, ``sr-Latn``,
      three-letter and deprecated codes (``eng``, ``ger``, ``iw``) and individual languages
      of a macrolanguage Whisper knows (``cmn`` -> ``zh``, ``nb`` -> ``no``);
    - POSIX locale names: ``en_US``, ``de_DE.UTF-8``, ``ca_ES@valencia``.

    Only the language counts: a region or script (``zh-CN`` and ``zh-TW`` alike) gives the
    language's code, since Whisper has one token per language.

    Returns:
        A key of :data:`LANGUAGES`.

    Raises:
        UnknownLanguageError: if ``value`` is no language tag or name, or names a language
            Whisper does not know (``tlh``, Klingon).
    """
    key = value.strip().lower()
    if key in LANGUAGES:
        return key
    if key in _NAME_TO_CODE:
        return _NAME_TO_CODE[key]
    locale = key.split(".", 1)[0].split("@", 1)[0]  # POSIX: lang_TERRITORY.codeset@modifier
    try:
        tag = langcodes.Language.get(locale)
    except ValueError:  # langcodes' LanguageTagError: not BCP 47
        raise UnknownLanguageError(
            f"{value.strip()!r} is not a language; use {_EXAMPLES}."
        ) from None
    code = tag.language
    if code is not None:
        for candidate in (code, tag.prefer_macrolanguage().language or code):
            whisper = _STANDARD_TO_WHISPER.get(candidate, candidate)
            if whisper in LANGUAGES:
                return whisper
    raise UnknownLanguageError(
        f"Whisper does not know the language {value.strip()!r}; use {_EXAMPLES}."
    )


def language_or_auto(value: str) -> str:
    """``auto`` (any case) as ``auto``; any other spelling of a language as Whisper's code.

    Raises:
        UnknownLanguageError: (a ``ValueError``) for no language Whisper knows.
    """
    return "auto" if value.strip().lower() == "auto" else normalize_language(value)


def language_or_detect(value: str | None) -> str | None:
    """None or empty (detect the language) as None; any other spelling as Whisper's code.

    Raises:
        UnknownLanguageError: (a ``ValueError``) for no language Whisper knows.
    """
    return normalize_language(value) if value and value.strip() else None

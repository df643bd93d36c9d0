"""What an OpenAI transcription answer carries next to the transcript: the ``languages``
detected among ``languages[]``, and the LLM's ``answer`` to ``ask`` (or ``answer_error``).

``ask`` is checked before any transcription work (a server without an LLM, a text format, or a
stream refuse it with 400 ``param=ask``), and answered after it: a failure of the LLM is
returned as ``answer_error`` in a 200 answer that holds the transcript, so the transcript is
never lost to it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from whisperd.api.disconnect import until_disconnected
from whisperd.schemas.openai import AnswerError, TranscriptionLanguage, UnsupportedFieldError
from whisperd.service.ask import LlmConfig, answer

if TYPE_CHECKING:
    from fastapi import Request

    from whisperd.config import Settings
    from whisperd.engine.base import Transcript
    from whisperd.schemas.openai import OpenAIFields

__all__ = ["check_ask", "response_extras"]


def check_ask(fields: OpenAIFields, settings: Settings) -> None:
    """Refuse an ``ask`` this request or this server cannot answer.

    Raises:
        UnsupportedFieldError: (400, ``param=ask``) with ``stream=true``, with a format other
            than json or verbose_json, or when the server has no LLM (``llm_url``).
    """
    if fields.ask is None or not fields.ask.strip():
        return
    if LlmConfig.of(settings) is None:
        raise UnsupportedFieldError(
            "ask is not available: this server has no LLM configured (--llm-url, "
            "WHISPERD_LLM_URL).",
            param="ask",
        )
    if fields.stream:
        raise UnsupportedFieldError(
            "ask cannot be combined with stream=true: the answer needs the whole transcript. "
            "Leave out stream.",
            param="ask",
        )
    if fields.response_format not in ("json", "verbose_json"):
        raise UnsupportedFieldError(
            f"ask needs response_format json or verbose_json (the answer is returned as "
            f"'answer' next to the text), not {fields.response_format}.",
            param="ask",
        )


async def response_extras(
    request: Request, transcript: Transcript, fields: OpenAIFields, settings: Settings
) -> dict[str, Any]:
    """The extra fields of a json or verbose_json answer, JSON-ready.

    Returns:
        ``languages`` when ``languages[]`` was sent; ``answer`` or ``answer_error`` when
        ``ask`` was (see :func:`check_ask`, which the route calls first).

    Raises:
        CancelledError: if the client went away while the LLM answered.
    """
    extras: dict[str, Any] = {}
    if fields.languages:
        extras["languages"] = [item.model_dump() for item in TranscriptionLanguage.of(transcript)]
    config = LlmConfig.of(settings)
    instruction = (fields.ask or "").strip()
    if instruction and config is not None:
        reply = await until_disconnected(
            request, lambda _: answer(config, transcript.text, instruction)
        )
        if reply.error is not None:
            error = AnswerError(message=reply.error.message, code=reply.error.code)
            extras["answer_error"] = error.model_dump()
        else:
            extras["answer"] = reply.text
    return extras

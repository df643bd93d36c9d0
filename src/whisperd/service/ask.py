"""Ask an LLM about a transcript: ``ask`` on the HTTP API, ``whisperd transcribe --ask``.

The transcript and the instruction ("summarize it") go to an OpenAI-compatible chat
completions API the user runs (Ollama, vLLM, llama.cpp, FastFlowLM), through the ``openai``
SDK. A transcript that does not fit the model's context is asked about in parts (map-reduce):

1. The context (``llm_context_tokens``, estimated by :mod:`whisperd.service.ask_chunks`) keeps
   a quarter for the answer (the ``max_tokens`` asked for); the rest, less the instruction
   and the prompt's own words, is the budget of transcript one call may carry.
2. A transcript within the budget is asked about in one call. A longer one is cut into parts
   within the budget (at sentence ends where possible), and each part is asked about as
   "part i of n" (map), one call after another, as a local LLM serves them.
3. The parts' answers are combined into one answer by a further call (reduce); answers that
   together exceed the budget are combined in groups first, and so on until one is left.

Calls are not retried; a timeout, a connection failure, an error status or a reply without an
answer raises :class:`~whisperd.errors.LlmError`, which the front ends report next to the
transcript (never instead of it).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from whisperd.errors import LlmError, LlmRefusedError
from whisperd.service.ask_chunks import estimate_tokens, split_text

if TYPE_CHECKING:
    import openai

    from whisperd.config import Settings

__all__ = ["SYSTEM_PROMPT", "Answer", "Chat", "LlmConfig", "answer", "ask", "map_reduce"]

logger = logging.getLogger(__name__)

SYSTEM_PROMPT: Final = (
    "You answer instructions about the transcript of an audio recording, made by speech "
    "recognition (it may hold recognition errors and has no speaker names). Follow the "
    "instruction using only what the transcript says."
)
_PROMPT_OVERHEAD_TOKENS: Final = 200
"""Room kept for the system prompt and each prompt's framing words, in estimated tokens."""

Chat = Callable[[str], Awaitable[str]]
"""One chat call: the user message in, the answer out."""


@dataclass(frozen=True, slots=True)
class LlmConfig:
    """Where the LLM is and how much one call may hold."""

    url: str
    """Base URL of the OpenAI-compatible API (``.../v1``)."""
    model: str | None = None
    """Model name; None: the first model the API lists."""
    api_key: str | None = None
    """Bearer key, if the API needs one."""
    timeout_s: float = 120.0
    """Seconds one call may take."""
    context_tokens: int = 8192
    """The model's context window, in estimated tokens."""

    @classmethod
    def of(cls, settings: Settings) -> LlmConfig | None:
        """The settings' LLM, or None when ``llm_url`` is unset."""
        if not settings.llm_url:
            return None
        key = settings.llm_api_key
        return cls(
            url=settings.llm_url,
            model=settings.llm_model,
            api_key=key.get_secret_value() if key is not None else None,
            timeout_s=settings.llm_timeout_s,
            context_tokens=settings.llm_context_tokens,
        )

    @property
    def answer_tokens(self) -> int:
        """Tokens asked for each answer (``max_tokens``): a quarter of the context."""
        return self.context_tokens // 4


@dataclass(frozen=True, slots=True)
class Answer:
    """What the LLM made of a transcript: its answer, or why there is none."""

    text: str | None
    """The answer; None when the LLM gave none."""
    error: LlmError | None = None
    """Why there is no answer."""


async def answer(config: LlmConfig, transcript: str, instruction: str) -> Answer:
    """:func:`ask`, with a failure of the LLM returned instead of raised.

    An empty transcript is not sent: there is nothing to ask about.
    """
    if not transcript.strip():
        return Answer(None, LlmRefusedError("The transcript is empty: there is nothing to ask."))
    try:
        return Answer(await ask(config, transcript, instruction))
    except LlmError as error:
        logger.warning("ask: %s", error.message)
        return Answer(None, error)


async def ask(config: LlmConfig, transcript: str, instruction: str) -> str:
    """Send ``instruction`` about ``transcript`` to the LLM; map-reduce a long transcript.

    Args:
        config: The LLM.
        transcript: The transcript's text.
        instruction: What to do with it ("summarize it").

    Returns:
        The answer, stripped.

    Raises:
        LlmError: if the LLM cannot be reached, times out or answers an error status, or the
            instruction leaves no room for the transcript in the context.
        LlmRefusedError: if it replies without an answer.
    """
    import openai

    budget = _transcript_budget(config, instruction)
    client = openai.AsyncOpenAI(
        base_url=config.url,
        api_key=config.api_key or "none",  # the SDK needs one; local servers ignore it
        timeout=config.timeout_s,
        max_retries=0,
    )
    try:
        model = config.model or await _first_model(client, config)

        async def chat(message: str) -> str:
            return await _chat(client, config, model, message)

        return await map_reduce(chat, transcript, instruction, budget)
    finally:
        await client.close()


async def map_reduce(chat: Chat, transcript: str, instruction: str, budget: int) -> str:
    """Ask ``chat`` about ``transcript`` in parts of at most ``budget`` tokens, then combine.

    Raises:
        LlmError: as ``chat`` raises it.
    """
    parts = split_text(transcript, budget)
    if len(parts) <= 1:
        return await chat(_whole_prompt(transcript, instruction))
    answers = [
        await chat(_part_prompt(part, index, len(parts), instruction))
        for index, part in enumerate(parts, start=1)
    ]
    while len(answers) > 1:
        groups = _groups(answers, budget)
        answers = [await chat(_combine_prompt(group, instruction)) for group in groups]
    return answers[0]


def _transcript_budget(config: LlmConfig, instruction: str) -> int:
    """Estimated tokens of transcript one call may carry.

    Raises:
        LlmError: if that leaves less than two answers' room (combining could not shrink).
    """
    budget = (
        config.context_tokens
        - config.answer_tokens
        - estimate_tokens(instruction)
        - _PROMPT_OVERHEAD_TOKENS
    )
    if budget < 2 * config.answer_tokens:
        raise LlmError(
            f"The instruction is too long for the LLM's context of {config.context_tokens} "
            "tokens (llm_context_tokens): shorten it, or raise llm_context_tokens."
        )
    return budget


def _groups(answers: list[str], budget: int) -> list[list[str]]:
    """Consecutive answers grouped so that each group's text stays within ``budget``; every
    group holds two answers at least, so each round of combining shrinks the list."""
    groups: list[list[str]] = []
    current: list[str] = []
    for item in answers:
        if len(current) >= 2 and estimate_tokens("\n\n".join([*current, item])) > budget:
            groups.append(current)
            current = []
        current.append(item)
    if len(current) == 1 and groups:
        groups[-1].append(current[0])
    elif current:
        groups.append(current)
    return groups


def _whole_prompt(transcript: str, instruction: str) -> str:
    return f'Transcript:\n"""\n{transcript}\n"""\n\nInstruction: {instruction}'


def _part_prompt(part: str, index: int, count: int, instruction: str) -> str:
    return (
        f"The transcript is too long to read at once; this is part {index} of {count}.\n\n"
        f'Transcript, part {index} of {count}:\n"""\n{part}\n"""\n\n'
        f"Instruction (about the whole transcript): {instruction}\n\n"
        "Follow the instruction for this part only; your answer will be combined with the "
        "answers for the other parts."
    )


def _combine_prompt(answers: list[str], instruction: str) -> str:
    numbered = "\n\n".join(
        f"Answer for part {index}:\n{text}" for index, text in enumerate(answers, start=1)
    )
    return (
        f"The instruction below was followed for {len(answers)} consecutive parts of one "
        f"transcript, in order:\n\n{numbered}\n\nInstruction: {instruction}\n\n"
        "Combine these answers into one answer to the instruction about the whole transcript."
    )


async def _first_model(client: openai.AsyncOpenAI, config: LlmConfig) -> str:
    """The first model the API lists (for servers of one model, when none is configured).

    Raises:
        LlmError: if the listing fails or is empty.
    """
    import openai

    try:
        page = await client.models.list()
    except openai.APIError as exc:
        raise _llm_error(exc, config) from exc
    for model in page.data:
        return model.id
    raise LlmError(
        f"The LLM at {config.url} lists no model: set llm_model (--llm-model, WHISPERD_LLM_MODEL)."
    )


async def _chat(client: openai.AsyncOpenAI, config: LlmConfig, model: str, message: str) -> str:
    """One chat completion; its answer's text.

    Raises:
        LlmError: on a timeout, a connection failure or an error status.
        LlmRefusedError: on a reply without text (or with a refusal).
    """
    import openai

    try:
        completion = await client.chat.completions.create(
            model=model,
            messages=[
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": message},
            ],
            max_tokens=config.answer_tokens,
        )
    except openai.APIError as exc:
        raise _llm_error(exc, config) from exc
    choice = completion.choices[0] if completion.choices else None
    if choice is None:
        raise LlmRefusedError(f"The LLM at {config.url} replied without an answer.")
    refusal = getattr(choice.message, "refusal", None)
    text = (choice.message.content or "").strip()
    if refusal:
        raise LlmRefusedError(f"The LLM at {config.url} refused: {refusal}")
    if not text:
        raise LlmRefusedError(f"The LLM at {config.url} replied with an empty answer.")
    return text


def _llm_error(exc: openai.APIError, config: LlmConfig) -> LlmError:
    """What a failed call to the LLM tells the user."""
    import openai

    where = f"The LLM at {config.url}"
    if isinstance(exc, openai.APITimeoutError):
        return LlmError(f"{where} did not answer within {config.timeout_s:g} s (llm_timeout_s).")
    if isinstance(exc, openai.APIConnectionError):
        return LlmError(f"{where} cannot be reached: {exc.__cause__ or exc}.")
    if isinstance(exc, openai.APIStatusError):
        body = exc.body if isinstance(exc.body, dict) else {}
        detail = body.get("message") or exc.message  # the server's own words when it gave them
        return LlmError(f"{where} answered HTTP {exc.status_code}: {detail}")
    return LlmError(f"{where} failed: {exc}")

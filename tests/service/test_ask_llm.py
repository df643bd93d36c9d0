"""Asking an LLM about a transcript: token budgets, map-reduce, the requests sent to an
OpenAI-compatible server, and every way the server can fail."""

from __future__ import annotations

import asyncio
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fake_llm import MODEL, closed_port_url, serving_llm
from whisperd.config import Settings
from whisperd.errors import LlmError, LlmRefusedError
from whisperd.service.ask import SYSTEM_PROMPT, LlmConfig, answer, ask, map_reduce
from whisperd.service.ask_chunks import estimate_tokens, split_text

SENTENCE = "The quick brown fox jumps over the lazy dog near the river bank. "


# --------------------------------------------------------------------------------------------
# Token estimates and parts


def test_estimate_tokens_counts_ascii_by_four_and_others_by_one() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("abcd") == 1
    assert estimate_tokens("abcde") == 2
    assert estimate_tokens("日本語") == 3
    assert estimate_tokens("ab日本") == 3


@given(
    st.lists(
        st.one_of(st.text(alphabet="abc .!?", min_size=1, max_size=40), st.just("日本語。")),
        max_size=30,
    ),
    st.integers(min_value=1, max_value=40),
)
def test_split_text_keeps_every_word_within_the_budget(pieces: list[str], budget: int) -> None:
    text = "".join(pieces)
    parts = split_text(text, budget)
    assert all(estimate_tokens(part) <= budget for part in parts)
    assert "".join("".join(parts).split()) == "".join(text.split())


def test_split_text_cuts_at_sentence_ends() -> None:
    text = SENTENCE * 6
    parts = split_text(text, estimate_tokens(SENTENCE) * 2)
    assert len(parts) == 3
    assert all(part.endswith("bank.") for part in parts)
    assert split_text("   ", 10) == []
    assert split_text("short", 10) == ["short"]


# --------------------------------------------------------------------------------------------
# Map-reduce with a recorded chat


def _recorder(padding: str = "") -> tuple[list[str], object]:
    seen: list[str] = []

    async def chat(message: str) -> str:
        seen.append(message)
        part = re.search(r"this is part (\d+) of (\d+)", message)
        if part:
            return f"p{part[1]}{padding}"
        if "Combine these answers" in message:
            answers = re.findall(r"Answer for part \d+:\n(\S+)", message)
            return f"c{len(answers)}{padding}" if padding else "c(" + ",".join(answers) + ")"
        return "whole"

    return seen, chat


def test_a_transcript_that_fits_is_asked_about_in_one_call() -> None:
    seen, chat = _recorder()
    result = asyncio.run(map_reduce(chat, SENTENCE * 3, "summarize it", 1000))  # type: ignore[arg-type]
    assert result == "whole"
    assert len(seen) == 1
    assert SENTENCE.strip() in seen[0]
    assert "Instruction: summarize it" in seen[0]


def test_a_long_transcript_is_mapped_then_reduced() -> None:
    seen, chat = _recorder()
    budget = estimate_tokens(SENTENCE) * 2
    result = asyncio.run(map_reduce(chat, SENTENCE * 6, "list the animals", budget))  # type: ignore[arg-type]
    assert result == "c(p1,p2,p3)"
    assert len(seen) == 4
    assert all("list the animals" in message for message in seen)
    assert "part 1 of 3" in seen[0]
    assert SENTENCE.strip() in seen[0]


def test_too_many_answers_are_combined_in_rounds() -> None:
    seen, chat = _recorder(padding="-" * 24)  # answers of about 7 estimated tokens
    budget = 20  # a part of about one sentence; two answers per combining call
    result = asyncio.run(map_reduce(chat, SENTENCE * 16, "x", budget))  # type: ignore[arg-type]
    maps = [m for m in seen if "this is part" in m]
    combines = [m for m in seen if "Combine these answers" in m]
    assert len(maps) == 16
    counts = [m.count("Answer for part") for m in combines]
    assert all(2 <= count <= 3 for count in counts)  # groups within the budget of 20
    assert sum(count - 1 for count in counts) == len(maps) - 1  # each call merges its group
    assert result.startswith("c")


# --------------------------------------------------------------------------------------------
# Against a local OpenAI-compatible server


def _config(url: str, **overrides: object) -> LlmConfig:
    values: dict[str, object] = {"url": url, "model": MODEL, "timeout_s": 5.0}
    values.update(overrides)
    return LlmConfig(**values)  # type: ignore[arg-type]


def test_the_request_is_an_openai_chat_completion() -> None:
    with serving_llm() as llm:
        result = asyncio.run(ask(_config(llm.url, api_key="s3cret"), SENTENCE, "summarize it"))
    assert result == f"whole: {len(SENTENCE.split())} words"
    (body,) = llm.chats
    assert body["model"] == MODEL
    assert body["max_tokens"] == 8192 // 4
    assert body["messages"][0] == {"role": "system", "content": SYSTEM_PROMPT}
    assert body["messages"][1]["role"] == "user"
    assert SENTENCE.strip() in body["messages"][1]["content"]
    assert llm.headers[0]["authorization"] == "Bearer s3cret"
    assert llm.listed == 0


def test_without_a_model_the_first_listed_one_is_asked() -> None:
    with serving_llm() as llm:
        result = asyncio.run(ask(_config(llm.url, model=None), SENTENCE, "summarize it"))
    assert result.startswith("whole")
    assert llm.listed == 1
    assert llm.chats[0]["model"] == MODEL


def test_a_long_transcript_is_map_reduced_through_the_server() -> None:
    text = SENTENCE * 400  # about 6500 estimated tokens
    with serving_llm() as llm:
        result = asyncio.run(ask(_config(llm.url, context_tokens=4096), text, "summarize it"))
    parts = len(llm.chats) - 1
    assert parts >= 3
    assert (
        result == "combined[" + "+".join(f"part-{i}-of-{parts}" for i in range(1, parts + 1)) + "]"
    )
    for message in llm.user_messages()[:-1]:
        assert estimate_tokens(message) <= 4096 - 4096 // 4
    joined = " ".join(m.split('"""')[1] for m in llm.user_messages()[:-1])
    assert joined.split() == text.split()


@pytest.mark.parametrize(
    ("mode", "error", "words"),
    [
        ("error", LlmError, "answered HTTP 500: the GPU caught fire"),
        ("missing_model", LlmError, "answered HTTP 404: model 'tiny-llm' not found"),
        ("slow", LlmError, "did not answer within 0.5 s"),
        ("empty", LlmRefusedError, "empty answer"),
        ("refuse", LlmRefusedError, "refused: I cannot help with that."),
    ],
)
def test_failures_of_the_server_are_clear(mode: str, error: type[LlmError], words: str) -> None:
    with serving_llm(mode) as llm, pytest.raises(error) as info:
        asyncio.run(ask(_config(llm.url, timeout_s=0.5), SENTENCE, "summarize it"))
    assert words in info.value.message
    assert llm.url in info.value.message
    assert len(llm.chats) == 1  # no retries
    assert info.value.code == ("llm_refused" if error is LlmRefusedError else "llm_unavailable")


def test_a_server_that_is_down_is_clear() -> None:
    url = closed_port_url()
    with pytest.raises(LlmError) as info:
        asyncio.run(ask(_config(url), SENTENCE, "summarize it"))
    assert f"The LLM at {url} cannot be reached" in info.value.message


def test_answer_returns_failures_and_skips_empty_transcripts() -> None:
    failed = asyncio.run(answer(_config(closed_port_url()), SENTENCE, "summarize it"))
    assert failed.text is None
    assert failed.error is not None
    assert failed.error.code == "llm_unavailable"
    with serving_llm() as llm:
        empty = asyncio.run(answer(_config(llm.url), "  ", "summarize it"))
        ok = asyncio.run(answer(_config(llm.url), SENTENCE, "summarize it"))
    assert empty.error is not None
    assert "empty" in empty.error.message
    assert len(llm.chats) == 1
    assert ok.text is not None
    assert ok.error is None


def test_an_instruction_that_leaves_no_room_is_refused_before_any_call() -> None:
    with serving_llm() as llm, pytest.raises(LlmError) as info:
        asyncio.run(ask(_config(llm.url, context_tokens=1024), SENTENCE, "x" * 2000))
    assert "too long for the LLM's context of 1024 tokens" in info.value.message
    assert llm.chats == []


def test_config_from_settings() -> None:
    assert LlmConfig.of(Settings(_env_file=None)) is None
    settings = Settings(
        _env_file=None,
        llm_url="http://127.0.0.1:11434/v1",
        llm_model="llama3.2",
        llm_api_key="k",
        llm_timeout_s=9,
        llm_context_tokens=4096,
    )
    config = LlmConfig.of(settings)
    assert config == LlmConfig("http://127.0.0.1:11434/v1", "llama3.2", "k", 9.0, 4096)
    assert config.answer_tokens == 1024


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WHISPERD_LLM_URL", "http://127.0.0.1:8080/v1")
    monkeypatch.setenv("WHISPERD_LLM_API_KEY", "from-env")
    config = LlmConfig.of(Settings(_env_file=None))
    assert config is not None
    assert (config.url, config.api_key, config.model) == (
        "http://127.0.0.1:8080/v1",
        "from-env",
        None,
    )
    monkeypatch.setenv("WHISPERD_LLM_CONTEXT_TOKENS", "100")
    with pytest.raises(ValueError, match="llm_context_tokens"):
        Settings(_env_file=None)

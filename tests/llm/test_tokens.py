"""OpenAI's tokenizer from the files shipped in a package: nothing downloaded."""

from __future__ import annotations

import pytest

from automatos.llm.openai_compat import OpenAICompatibleProvider
from automatos.llm.tokens import OPENAI_TOKENIZER, openai_counter


def test_tokens_are_counted_with_cl100k_base() -> None:
    count = openai_counter()
    assert count is not None
    assert count("Hello world") == 2
    assert count("tiktoken is great!") == 6
    assert count("<|endoftext|>") > 1  # special tokens in a text are text, not an error
    assert count("") == 0


def test_openais_own_api_counts_with_its_tokenizer_other_servers_estimate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    hosted = OpenAICompatibleProvider(model="gpt-4o-mini", api_key="sk-test")
    assert hosted.profile.tokenizer == OPENAI_TOKENIZER
    assert hosted.profile.count_tokens("Hello world") == 2
    local = OpenAICompatibleProvider(model="llama3.1", base_url="http://127.0.0.1:11434/v1")
    assert local.profile.tokenizer == "estimate"

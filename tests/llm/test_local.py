"""The in-process llama.cpp provider, on the embedded Gemma 3 270M."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from automatos import ConfigurationError, ProviderRequestError, ProviderUnavailableError
from automatos.llm import Message
from automatos.llm.local import (
    LlamaCppProvider,
    PromptStyle,
    completion_prompt,
    default_model_path,
)


@pytest.fixture(scope="module")
def gemma() -> Iterator[LlamaCppProvider]:
    provider = LlamaCppProvider(
        default_model_path(), prompt_style="completion", n_ctx=2048, max_tokens=48
    )
    yield provider
    provider._worker.shutdown(wait=True)


ASK = [Message("system", "Answer briefly."), Message("user", "Name a colour of the sky.")]


def test_completion_prompt_is_few_shot() -> None:
    prompt = completion_prompt(ASK, structured=False)
    assert prompt.count("Task:") == 3
    assert prompt.endswith("Task: Name a colour of the sky.\nAnswer:")
    assert "Answer briefly" not in prompt
    structured = completion_prompt(ASK, structured=True)
    assert structured.endswith("Task: Answer briefly.\n\nName a colour of the sky.\nAnswer (JSON):")


async def test_plain_generation(gemma: LlamaCppProvider) -> None:
    done = await gemma.complete(ASK, temperature=0.0)
    assert done.text
    assert done.tokens_in > 50
    assert 0 < done.tokens_out <= 48
    assert done.model == "gemma-3-270m-q4_k_m"


async def test_concurrent_calls_share_one_model(gemma: LlamaCppProvider) -> None:
    answers = await asyncio.gather(*(gemma.complete(ASK, max_tokens=8) for _ in range(3)))
    assert all(a.tokens_out > 0 for a in answers)


async def cancel_a_long_call(
    provider: LlamaCppProvider, json_schema: dict[str, object] | None = None
) -> float:
    """Seconds the next short call waited after a long one was cancelled mid-generation."""
    long = asyncio.create_task(
        provider.complete(
            [Message("user", "Write a very long story.")],
            max_tokens=2000,
            json_schema=json_schema,
        )
    )
    await asyncio.sleep(0.5)
    long.cancel()
    with pytest.raises(asyncio.CancelledError):
        await long
    started = time.perf_counter()
    await provider.complete(ASK, max_tokens=4)
    return time.perf_counter() - started


async def test_a_cancelled_call_frees_the_model_quickly(gemma: LlamaCppProvider) -> None:
    assert await cancel_a_long_call(gemma) < 5  # not the ~30 s the story would have taken


# Forces a long answer: the embedded model's chat-style answers are otherwise often empty.
LONG_ARRAY = {"type": "array", "items": {"type": "integer"}, "minItems": 1000}


async def test_a_cancelled_chat_call_frees_the_model_quickly() -> None:
    chat = LlamaCppProvider(default_model_path(), prompt_style="chat", n_ctx=2048)
    try:
        await chat.complete(ASK, max_tokens=2)  # loaded, so that the cancel lands mid-answer
        # 2,000 tokens under the grammar take ~100 s if the cancel does not stop them
        assert await cancel_a_long_call(chat, LONG_ARRAY) < 5
        again = await chat.complete(ASK, max_tokens=8, json_schema=LONG_ARRAY)
        assert again.tokens_out == 8  # the model is still usable, and counts its tokens
        assert 8 < again.tokens_in < 40
        assert again.text.startswith("[")
    finally:
        chat._worker.shutdown(wait=True)


async def test_a_prompt_larger_than_the_context_is_refused() -> None:
    small = LlamaCppProvider(default_model_path(), prompt_style="completion", n_ctx=256)
    with pytest.raises(ProviderRequestError, match="local_n_ctx"):
        await small.complete([Message("user", "word " * 2000)])
    await small.aclose()


async def test_a_missing_model_file_is_named(tmp_path: Path) -> None:
    missing = LlamaCppProvider(tmp_path / "nothing.gguf")
    with pytest.raises(ConfigurationError, match=r"nothing\.gguf"):
        await missing.complete(ASK)
    await missing.aclose()


async def test_a_file_that_is_not_a_model_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a gguf file" * 100)
    broken = LlamaCppProvider(bad)
    with pytest.raises(ConfigurationError, match="cannot load"):
        await broken.complete(ASK)
    await broken.aclose()


# Whatever llama.cpp raises becomes a typed error naming the model file.


class _Boom:
    """A stand-in for ``llama_cpp.Llama`` whose every method raises ``error``."""

    n_tokens = 0

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def create_completion(self, *args: object, **kwargs: object) -> object:
        raise self.error

    def create_chat_completion(self, *args: object, **kwargs: object) -> object:
        raise self.error


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    path = tmp_path / "some-model.gguf"
    path.write_bytes(b"GGUF")
    return path


@pytest.mark.parametrize(
    "error", [OSError("mmap failed"), TypeError("bad argument"), MemoryError(), KeyError("arch")]
)
async def test_any_loading_error_is_a_configuration_error(
    model_file: Path, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    import llama_cpp

    def refuse(**kwargs: object) -> None:
        raise error

    monkeypatch.setattr(llama_cpp, "Llama", refuse)
    provider = LlamaCppProvider(model_file)
    with pytest.raises(
        ConfigurationError, match=rf"cannot load the model file {model_file}: "
    ) as e:
        await provider.complete(ASK)
    assert type(error).__name__ in str(e.value)
    assert str(e.value).endswith("(setting llm.model_path)")
    await provider.aclose()


@pytest.mark.parametrize("style", ["chat", "completion"])
@pytest.mark.parametrize("error", [RuntimeError("llama_decode returned -3"), KeyError("choices")])
async def test_any_generation_error_is_an_llm_error(
    model_file: Path, style: PromptStyle, error: Exception
) -> None:
    provider = LlamaCppProvider(model_file, prompt_style=style)
    provider._llama = _Boom(error)
    with pytest.raises(ProviderUnavailableError, match=rf"the local model {model_file} failed: "):
        await provider.complete(ASK)
    await provider.aclose()


async def test_a_refused_prompt_names_the_file_and_the_setting(model_file: Path) -> None:
    provider = LlamaCppProvider(model_file, prompt_style="completion")
    provider._llama = _Boom(ValueError("Requested tokens exceed context window"))
    with pytest.raises(
        ProviderRequestError, match=rf"{model_file} refused the prompt: .*local_n_ctx"
    ):
        await provider.complete(ASK)
    await provider.aclose()


async def test_a_schema_llama_cpp_cannot_follow_is_named(
    model_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import llama_cpp

    def no_grammar(*args: object, **kwargs: object) -> None:
        raise RuntimeError("unsupported schema")

    monkeypatch.setattr(llama_cpp.LlamaGrammar, "from_json_schema", no_grammar)
    provider = LlamaCppProvider(model_file)
    provider._llama = _Boom(AssertionError("not reached"))
    with pytest.raises(ProviderRequestError, match="cannot follow this JSON schema"):
        await provider.complete(ASK, json_schema={"type": "object"})
    await provider.aclose()


async def test_a_closed_provider_is_an_llm_error(model_file: Path) -> None:
    provider = LlamaCppProvider(model_file)
    await provider.aclose()
    with pytest.raises(ProviderUnavailableError, match="is closed"):
        await provider.complete(ASK)

import importlib.util
from pathlib import Path

import pytest

from automatos import ConfigurationError, Engine, Settings
from automatos.llm.anthropic import AnthropicProvider
from automatos.llm.factory import build_provider
from automatos.llm.local import LlamaCppProvider
from automatos.llm.openai_compat import OpenAICompatibleProvider
from automatos.settings import LLMSettings


def test_without_the_local_extra_the_error_names_the_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "llama_cpp" else real(name, *a),
    )
    with pytest.raises(ConfigurationError) as info:
        build_provider(LLMSettings())
    for setting in ("AUTOMATOS_LLM__PROVIDER", "AUTOMATOS_LLM__BASE_URL", "AUTOMATOS_LLM__MODEL"):
        assert setting in str(info.value)
    with pytest.raises(ConfigurationError):
        Engine(Settings())
    assert "automatos[local]" in str(info.value)


def test_nothing_configured_means_the_embedded_model() -> None:
    provider = build_provider(LLMSettings())
    assert isinstance(provider, LlamaCppProvider)
    assert provider.prompt_style == "completion"
    assert provider.model_path.name == "gemma-3-270m-q4_k_m.gguf"
    profile = Engine(Settings()).runtime.profile
    assert not (profile.plans_freely or profile.chooses_agents or profile.judges)
    assert profile.context_window == LLMSettings().local_n_ctx


def test_your_own_gguf_uses_its_chat_template(tmp_path: Path) -> None:
    provider = build_provider(LLMSettings(model_path=tmp_path / "m.gguf"))
    assert isinstance(provider, LlamaCppProvider)
    assert provider.prompt_style == "chat"
    assert Engine(
        Settings(llm=LLMSettings(model_path=tmp_path / "m.gguf"))
    ).runtime.profile.plans_freely


def test_a_base_url_alone_means_openai_compatible() -> None:
    provider = build_provider(LLMSettings(base_url="http://127.0.0.1:1/v1"))
    assert isinstance(provider, OpenAICompatibleProvider)


def test_anthropic() -> None:
    provider = build_provider(LLMSettings(provider="anthropic", api_key="k", model="claude-x"))
    assert isinstance(provider, AnthropicProvider)


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOMATOS_LLM__PROVIDER", "openai")
    monkeypatch.setenv("AUTOMATOS_LLM__API_KEY", "secret-key")
    monkeypatch.setenv("AUTOMATOS_EXECUTION__MAX_CONCURRENCY", "3")
    settings = Settings()
    assert settings.llm.provider == "openai"
    assert settings.execution.max_concurrency == 3
    assert "secret-key" not in repr(settings)


def test_openai_without_a_key_fails_when_built(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(ConfigurationError, match="AUTOMATOS_LLM__API_KEY"):
        build_provider(LLMSettings(provider="openai"))
    with pytest.raises(ConfigurationError, match="AUTOMATOS_LLM__API_KEY"):
        Engine(Settings(llm=LLMSettings(provider="openai")))
    local = build_provider(LLMSettings(provider="openai", base_url="http://127.0.0.1:1/v1"))
    assert isinstance(local, OpenAICompatibleProvider)  # a local server needs no key

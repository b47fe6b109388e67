import pytest

from automatos import ConfigurationError, Engine, Settings
from automatos.llm.anthropic import AnthropicProvider
from automatos.llm.factory import build_provider
from automatos.llm.openai_compat import OpenAICompatibleProvider
from automatos.settings import LLMSettings


def test_no_provider_names_the_settings() -> None:
    with pytest.raises(ConfigurationError) as info:
        build_provider(LLMSettings())
    for setting in ("AUTOMATOS_LLM__PROVIDER", "AUTOMATOS_LLM__BASE_URL", "AUTOMATOS_LLM__MODEL"):
        assert setting in str(info.value)
    with pytest.raises(ConfigurationError):
        Engine(Settings())


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

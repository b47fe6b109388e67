"""Build the configured provider, wrapped with timeouts, retries and pricing."""

from __future__ import annotations

from automatos.errors import ConfigurationError
from automatos.llm.anthropic import AnthropicProvider
from automatos.llm.base import LLMProvider
from automatos.llm.managed import ManagedLLM
from automatos.llm.openai_compat import OpenAICompatibleProvider
from automatos.settings import LLMSettings

__all__ = ["NO_LLM_MESSAGE", "build_provider", "wrap_provider"]

NO_LLM_MESSAGE = """No LLM is configured. Set one of:
  - an OpenAI-compatible endpoint (OpenAI, OpenRouter, Ollama, vLLM, llama.cpp server):
      AUTOMATOS_LLM__PROVIDER=openai
      AUTOMATOS_LLM__BASE_URL=http://127.0.0.1:11434/v1   (omit for api.openai.com)
      AUTOMATOS_LLM__API_KEY=...                          (if the server needs one)
      AUTOMATOS_LLM__MODEL=...
  - Anthropic (pip install 'automatos[anthropic]'):
      AUTOMATOS_LLM__PROVIDER=anthropic
      AUTOMATOS_LLM__API_KEY=...
      AUTOMATOS_LLM__MODEL=claude-sonnet-4-5"""


def build_provider(settings: LLMSettings) -> LLMProvider:
    """The bare provider named by ``settings``.

    Raises:
        ConfigurationError: no provider is configured, naming the settings to set.
    """
    provider = settings.provider
    if provider is None and (settings.base_url or settings.api_key):
        provider = "openai"
    key = settings.api_key.get_secret_value() if settings.api_key else None
    if provider == "openai":
        return OpenAICompatibleProvider(
            model=settings.model,
            base_url=settings.base_url,
            api_key=key,
            json_mode=settings.json_mode,
            timeout_s=settings.timeout_s,
        )
    if provider == "anthropic":
        return AnthropicProvider(
            model=settings.model,
            api_key=key,
            base_url=settings.base_url,
            timeout_s=settings.timeout_s,
            max_tokens=settings.max_tokens,
        )
    raise ConfigurationError(NO_LLM_MESSAGE)


def wrap_provider(provider: LLMProvider, settings: LLMSettings) -> LLMProvider:
    """``provider`` with the timeouts, retries and prices of ``settings``."""
    return ManagedLLM(provider, settings)

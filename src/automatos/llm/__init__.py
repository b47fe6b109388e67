"""Language models: the provider Protocol, real providers, and the wrappers every call uses."""

from automatos.llm.base import Completion, LLMProvider, Message, estimate_tokens
from automatos.llm.factory import build_provider, wrap_provider
from automatos.llm.managed import ManagedLLM
from automatos.llm.pricing import cost_of, price_for
from automatos.llm.retry import backoff_delay
from automatos.llm.structured import Structured, complete_structured, extract_json

__all__ = [
    "Completion",
    "LLMProvider",
    "ManagedLLM",
    "Message",
    "Structured",
    "backoff_delay",
    "build_provider",
    "complete_structured",
    "cost_of",
    "estimate_tokens",
    "extract_json",
    "price_for",
    "wrap_provider",
]

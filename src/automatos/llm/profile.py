"""What a model can be trusted with: the stages ask the profile, never the provider's class.

A provider may say what it is through a ``profile`` attribute (the embedded 270M model says
it cannot plan, choose agents or judge); settings (``llm.profile``) override any field; a
provider that says nothing is taken as a capable hosted model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from automatos.errors import ConfigurationError, describe_value
from automatos.llm.base import estimate_tokens
from automatos.settings import ProfileSettings

__all__ = ["CAPABLE", "ModelProfile", "profile_of"]


@dataclass(frozen=True, slots=True)
class ModelProfile:
    """The abilities and limits of the model every stage calls."""

    plans_freely: bool = True
    """It can write a whole plan (ids, dependencies) from a request. When not, the plan's
    structure comes from the request itself and the model only words the steps."""
    chooses_agents: bool = True
    """It can choose agents for subtasks (stage 2); when not, the scores alone choose."""
    judges: bool = True
    """It can judge other answers (stage 7); when not, the heuristic scorer does."""
    classifies: bool = True
    """It can be asked for a request's complexity level when the request's features leave
    it open."""
    context_window: int = 128_000
    """Tokens of prompt and answer together."""
    count_tokens: Callable[[str], int] = field(default=estimate_tokens, compare=False)
    """The model's tokenizer, as a token count of a text."""
    tokenizer: str = "estimate"
    """What :attr:`count_tokens` counts with: counts kept by name (the knowledge base's) are
    reused only under the same one. ``estimate`` is
    :func:`~automatos.llm.base.estimate_tokens`, for models whose tokenizer is not on this
    machine (hosted ones: OpenAI's encodings would be downloaded at run time)."""

    def with_settings(self, settings: ProfileSettings) -> ModelProfile:
        """This profile with what the settings set (fields left unset keep their value)."""
        changes = settings.model_dump(exclude_none=True)
        return replace(self, **changes) if changes else self


CAPABLE = ModelProfile()
"""A hosted chat model: plans, chooses, judges."""


def profile_of(provider: object, settings: ProfileSettings | None = None) -> ModelProfile:
    """The profile ``provider`` declares (its ``profile`` attribute), else :data:`CAPABLE`,
    with ``settings`` applied.

    Raises:
        ConfigurationError: the provider's ``profile`` is something else than a profile.

    A provider wrapped by another (the engine's timeouts and retries) is asked through the
    wrapper's ``profile``.
    """
    declared = getattr(provider, "profile", None)
    if declared is not None and not isinstance(declared, ModelProfile):
        raise ConfigurationError(
            f"{type(provider).__name__}.profile is {describe_value(declared)}, not a "
            "ModelProfile (automatos.ModelProfile)"
        )
    profile = declared or CAPABLE
    return profile if settings is None else profile.with_settings(settings)

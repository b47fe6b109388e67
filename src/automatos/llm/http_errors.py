"""Mapping of HTTP failures onto the error tree, shared by the SDK-based providers."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping

from automatos.errors import (
    LLMError,
    ProviderRequestError,
    ProviderUnavailableError,
    RateLimitedError,
)

__all__ = ["error_for_status", "parse_retry_after"]


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date)."""
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        when = email.utils.parsedate_tz(value)
        return None if when is None else max(0.0, email.utils.mktime_tz(when) - time.time())


def error_for_status(status: int, message: str, headers: Mapping[str, str]) -> LLMError:
    """The typed error for an HTTP error answer of a provider."""
    text = f"HTTP {status}: {message}"[:1000]
    if status == 429:
        return RateLimitedError(text, retry_after=parse_retry_after(headers))
    if status >= 500 or status in (408, 409):
        return ProviderUnavailableError(text)
    return ProviderRequestError(text)

import email.utils
import time

import pytest

from automatos import ProviderRequestError, ProviderUnavailableError, RateLimitedError
from automatos.llm.http_errors import error_for_status, parse_retry_after


def test_retry_after_forms() -> None:
    assert parse_retry_after({"retry-after": "3"}) == 3
    assert parse_retry_after({"retry-after-ms": "250"}) == 0.25
    assert parse_retry_after({}) is None
    assert parse_retry_after({"retry-after": "soon"}) is None
    date = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= (parse_retry_after({"retry-after": date}) or 0) <= 31


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (429, RateLimitedError),
        (500, ProviderUnavailableError),
        (503, ProviderUnavailableError),
        (529, ProviderUnavailableError),
        (408, ProviderUnavailableError),
        (400, ProviderRequestError),
        (401, ProviderRequestError),
        (404, ProviderRequestError),
    ],
)
def test_status_mapping(status: int, kind: type) -> None:
    assert isinstance(error_for_status(status, "m", {"retry-after": "1"}), kind)

"""Who a request is for: its API key's workspace, and that key's share of the rate limit.

Every ``/v1`` endpoint takes a :data:`Scoped` parameter, so no endpoint can forget to check
the key or to scope what it reads to the key's workspace.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request

from automatos.server.limits import RateLimiter
from automatos.server.tenants import Tenant, Tenants

__all__ = ["CHALLENGE", "Scoped"]

CHALLENGE = {"WWW-Authenticate": "Bearer"}


async def _tenant(
    request: Request,
    authorization: Annotated[str | None, Header(max_length=500)] = None,
    x_api_key: Annotated[str | None, Header(max_length=500)] = None,
) -> Tenant:
    """The workspace the request's key is for (401 without a valid key, unless anonymous)."""
    tenants: Tenants = request.app.state.tenants
    secret = x_api_key
    if secret is None and authorization is not None:
        scheme, _, value = authorization.partition(" ")
        secret = value.strip() if scheme.lower() == "bearer" else None
    limiter: RateLimiter = request.app.state.limiter
    if secret is None:
        if request.app.state.anonymous:
            _limit(limiter, "anonymous")
            return await tenants.get(request.app.state.settings.store.workspace)
        raise HTTPException(401, "an API key is needed: Authorization: Bearer <key>", CHALLENGE)
    key = await (await tenants.open()).authenticate(secret)
    if key is None:
        raise HTTPException(401, "the API key is not valid (unknown or revoked)", CHALLENGE)
    _limit(limiter, key.id)
    return await tenants.for_key(key)


def _limit(limiter: RateLimiter, client: str) -> None:
    wait = limiter.wait_s(client)
    if wait:
        raise HTTPException(
            429,
            "too many requests for this key (settings server.rate_per_s, server.burst)",
            {"Retry-After": RateLimiter.retry_after(wait)},
        )


Scoped = Annotated[Tenant, Depends(_tenant)]
"""An endpoint's workspace, from its key."""

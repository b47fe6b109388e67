"""The live page at ``/``: the runs, one run's plan as a live DAG, the agents and what was
learned about them.

The page holds no data, so it needs no key: a template renders its skeleton, and a small
script (``static/page.js``, no build step, no framework) reads everything from the ``/v1``
API with the key the user entered once (kept in the browser's ``localStorage``), and a run's
subtask statuses from its event stream. The template says whether the server wants a key
at all (``automatos serve --no-auth``), so the script asks for one only when it does.

The page's Content-Security-Policy allows scripts, styles and requests from this server only
and no inline script: what the models wrote is shown as text, never as markup.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from importlib import resources

import jinja2
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

__all__ = ["CSP", "router"]

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
"""The page's Content-Security-Policy: nothing inline, nothing from elsewhere."""

_STATIC_TYPES = {
    "page.js": "text/javascript; charset=utf-8",
    "page.css": "text/css; charset=utf-8",
    "icon.svg": "image/svg+xml",
}
"""The files under ``static/`` the page may load: no path from a request reaches the disk."""

_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True)
class _Asset:
    body: bytes
    version: str
    """A digest of the body: the page links ``name?v=version``, so a browser that cached an
    older script fetches the new one."""


@cache
def _asset(name: str) -> _Asset:
    body = resources.files("automatos.server").joinpath("static", name).read_bytes()
    return _Asset(body, hashlib.sha256(body).hexdigest()[:12])


@cache
def _templates() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("automatos.server", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )


@router.get("/", response_class=HTMLResponse)
async def live_page(request: Request) -> HTMLResponse:
    """The page; its script fetches the data."""
    template = _templates().get_template("page.html")
    html = template.render(
        key_required=not request.app.state.anonymous,
        version=request.app.version,
        assets={name: f"/static/{name}?v={_asset(name).version}" for name in _STATIC_TYPES},
    )
    headers = {**_HEADERS, "Content-Security-Policy": CSP, "Cache-Control": "no-cache"}
    return HTMLResponse(html, headers=headers)


@router.get("/static/{name}")
async def static_file(name: str) -> Response:
    """One of the page's script, style sheet and icon."""
    media_type = _STATIC_TYPES.get(name)
    if media_type is None:
        raise HTTPException(404, f"no static file {name!r}")
    headers = {**_HEADERS, "Cache-Control": "public, max-age=3600"}
    return Response(_asset(name).body, media_type=media_type, headers=headers)

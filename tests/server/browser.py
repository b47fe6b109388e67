"""Headless Chromium for the live page's tests: Debian's ``chromium`` driven by Playwright's
Python API (Playwright's own browser download is never used)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from playwright.async_api import ConsoleMessage, Error, Page, async_playwright

CHROMIUM = shutil.which("chromium")
NO_CHROMIUM = (
    "Debian's chromium is not installed (apt-get install chromium; .ci/run installs it): "
    "the live page is tested in a real browser only"
)

# Injected before the page's own script (through the DevTools protocol, which the page's
# Content-Security-Policy does not govern): every status each DAG node shows, and when.
_RECORDER = """
window.__statuses = [];
const shown = new Map();
new MutationObserver(() => {
  for (const node of document.querySelectorAll("#dag [data-subtask]")) {
    const id = node.dataset.subtask;
    const status = node.dataset.status;
    if (shown.get(id) !== status) {
      shown.set(id, status);
      window.__statuses.push({ id, status, at: Date.now() });
    }
  }
}).observe(document, {
  subtree: true, childList: true, attributes: true, attributeFilter: ["data-status"],
});
"""


@dataclass
class Browsing:
    """A page in headless Chromium and what it reported."""

    page: Page
    errors: list[str] = field(default_factory=list)
    """Console errors and uncaught exceptions of the page's script."""

    async def statuses(self) -> dict[str, list[tuple[str, float]]]:
        """Each DAG node's statuses in the order it showed them, with the Unix time in ms."""
        log = await self.page.evaluate("window.__statuses")
        shown: dict[str, list[tuple[str, float]]] = {}
        for entry in log:
            shown.setdefault(entry["id"], []).append((entry["status"], float(entry["at"])))
        return shown


@contextlib.asynccontextmanager
async def browsing(base_url: str) -> AsyncIterator[Browsing]:
    """A fresh browser profile (no key kept) on ``base_url``."""
    assert CHROMIUM is not None, NO_CHROMIUM
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            context = await browser.new_context(
                base_url=base_url, viewport={"width": 1400, "height": 1000}
            )
            page = await context.new_page()
            seen = Browsing(page)

            def console(message: ConsoleMessage) -> None:
                if message.type == "error":
                    seen.errors.append(f"{message.text} ({message.location.get('url')})")

            def crashed(error: Error) -> None:
                seen.errors.append(f"uncaught: {error}")

            page.on("console", console)
            page.on("pageerror", crashed)
            await page.add_init_script(_RECORDER)
            yield seen
        finally:
            await browser.close()


def artifact(name: str) -> Path:
    """Where a test keeps a file for people to look at (``AUTOMATOS_ARTIFACTS``, else
    ``artifacts/``)."""
    folder = Path(os.environ.get("AUTOMATOS_ARTIFACTS", "artifacts"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


class CuttingProxy:
    """A TCP proxy in front of a server, whose event streams a test can cut as a network
    would (the page must then resume them)."""

    def __init__(self, target: str) -> None:
        self._host, _, port = target.removeprefix("http://").partition(":")
        self._port = int(port)
        self._streams: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        self.cut()

    def cut(self) -> int:
        """Reset every connection carrying an event stream; how many there were."""
        streams, self._streams = self._streams, set()
        for writer in streams:
            writer.transport.abort()
        return len(streams)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(self._host, self._port)

        async def pipe(
            source: asyncio.StreamReader, sink: asyncio.StreamWriter, watch: bool
        ) -> None:
            try:
                while data := await source.read(65536):
                    if watch and b"/events " in data:
                        self._streams.add(writer)
                    sink.write(data)
                    await sink.drain()
            except OSError:
                pass
            finally:
                sink.transport.abort()

        await asyncio.gather(pipe(reader, up_writer, True), pipe(up_reader, writer, False))

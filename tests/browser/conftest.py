"""A real browser on the sandbox's hosted page: Debian's Chromium driven by Playwright, the
shared sandbox process (tests/conftest.py) reached over HTTP, and a tiny shop on loopback whose
page is the sessions' `success_url`.

Playwright cannot download its own browser here, so it drives the system's
(`/usr/bin/chromium`, or `CHROMIUM`); `make test` installs Debian's `chromium` with apt-get
when it is missing and the user is root. Without it each browser test module skips, saying so
once (`skip_without_chromium`).
Chromium runs headless with a fresh profile and without the background networking it would
otherwise try (on these machines such connections are refused and slow the start).

`SCREENSHOTS=DIR` makes the scenarios that show the page save their screenshots in DIR
(`make screenshots` writes docs/images/); an ordinary run writes none.
"""

import os
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import stripe
from aiohttp import web
from playwright.async_api import BrowserContext, Page, async_playwright

from sandbox.launcher import SandboxProcess
from tests.sandbox.support import stripe_client

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


NO_CHROMIUM = (
    f"tests/browser: no Chromium at {CHROMIUM}; `make test` installs Debian's `chromium` with "
    "apt-get when run as root (or set CHROMIUM to a Chromium binary)"
)


def skip_without_chromium() -> None:
    """Skip the calling test module, with one message, where there is no Chromium to drive."""
    if not CHROMIUM.exists():
        pytest.skip(NO_CHROMIUM, allow_module_level=True)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[BrowserContext]:
    """One headless Chromium with a fresh profile for the session's browser tests."""
    with tempfile.TemporaryDirectory(prefix="checkout-chromium-") as profile:
        async with async_playwright() as playwright:
            context = await playwright.chromium.launch_persistent_context(
                profile,
                executable_path=CHROMIUM,
                headless=True,
                args=CHROMIUM_ARGS,
                viewport={"width": 720, "height": 1100},
            )
            yield context
            await context.close()


@pytest.fixture
async def page(browser: BrowserContext) -> AsyncIterator[Page]:
    tab = await browser.new_page()
    yield tab
    await tab.close()


@pytest.fixture(scope="session")
async def raw(sandbox_process: SandboxProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sandbox_process.url, timeout=10) as http:
        yield http


@pytest.fixture
async def sandbox(sandbox_process: SandboxProcess, raw: httpx.AsyncClient) -> SandboxProcess:
    """The shared sandbox, emptied for this test."""
    (await raw.post("/_sandbox/reset")).raise_for_status()
    return sandbox_process


@pytest.fixture(scope="session")
async def client(sandbox_process: SandboxProcess) -> AsyncIterator[stripe.StripeClient]:
    http = stripe.HTTPXClient()
    yield stripe_client(sandbox_process.url, http)
    await http.close_async()  # type: ignore[no-untyped-call]


@dataclass
class Shop:
    """The shop's side of the redirect: its `success_url`, and the session ids it was sent."""

    success_url: str = ""
    landed: list[str] = field(default_factory=list)

    async def done(self, request: web.Request) -> web.Response:
        session_id = request.query.get("session", "")
        self.landed.append(session_id)
        return web.Response(
            text=f"<!doctype html><title>Thank you</title><h1>Thank you</h1>"
            f"<p id='session'>{session_id}</p>",
            content_type="text/html",
        )


@pytest.fixture
async def shop() -> AsyncIterator[Shop]:
    recorder = Shop()
    app = web.Application()
    app.router.add_get("/done", recorder.done)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    recorder.success_url = f"http://127.0.0.1:{port}/done?session={{CHECKOUT_SESSION_ID}}"
    yield recorder
    await runner.cleanup()


@pytest.fixture(scope="session")
def screenshots() -> Path | None:
    """Where to save screenshots (`SCREENSHOTS`), or None."""
    folder = os.environ.get("SCREENSHOTS")
    if not folder:
        return None
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    return path

"""A real browser on the sandbox's hosted page: Debian's Chromium driven by Playwright, the
shared sandbox process (tests/conftest.py) reached over HTTP, the checkout service on real ports
that makes the sessions and hears the sandbox's signed webhooks (as in tests/e2e/conftest.py),
and a tiny shop on loopback whose page is the sessions' `success_url`.

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
from typing import Any

import grpc
import pytest
from aiohttp import web
from playwright.async_api import BrowserContext, Page, async_playwright

from checkout.v1 import checkout_service_pb2_grpc as api_grpc
from sandbox.launcher import SandboxProcess
from service.app import start
from service.config import Settings
from service.domain.sync import HANDLED_EVENTS
from service.edge.http import WEBHOOK_PATH
from tests.e2e.helpers import Sandbox, Stub

# Where the service's webhook endpoint points until the service has bound its HTTP port: nothing
# listens on the discard port, and no event is emitted before then.
NOT_YET_BOUND = f"http://127.0.0.1:9{WEBHOOK_PATH}"
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


@dataclass(frozen=True)
class Service:
    """The checkout service as the shop calls it, and the Stripe sandbox behind it."""

    stub: Stub
    sandbox: Sandbox


@pytest.fixture(scope="package")
async def service(sandbox_process: SandboxProcess, pg_dsn: str) -> AsyncIterator[Service]:
    """The service, with a webhook endpoint at the sandbox that reaches it. The sandbox is
    emptied once, before the endpoint is made (other packages' tests share it); the scenarios
    then use objects of their own."""
    sandbox = Sandbox(sandbox_process.url)
    sandbox.control("POST", "/_sandbox/reset")
    events: list[Any] = sorted(HANDLED_EVENTS)
    endpoint = await sandbox.client.v1.webhook_endpoints.create_async(
        {"url": NOT_YET_BOUND, "enabled_events": events}
    )
    assert endpoint.secret is not None
    environ = {
        "DATABASE_URL": pg_dsn,
        "GRPC_ADDR": "127.0.0.1:0",
        "HTTP_ADDR": "127.0.0.1:0",
        "STRIPE_API_BASE": sandbox.url,
        "STRIPE_MAX_NETWORK_RETRIES": "0",
        "STRIPE_WEBHOOK_SECRET": endpoint.secret,
        "LOG_LEVEL": "warning",
    }
    app = await start(Settings.from_environ(environ))
    try:
        hook = f"http://127.0.0.1:{app.http_port}{WEBHOOK_PATH}"
        await sandbox.client.v1.webhook_endpoints.update_async(endpoint.id, {"url": hook})
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}") as channel:
            yield Service(api_grpc.CheckoutServiceStub(channel), sandbox)
    finally:
        await app.stop()
        await sandbox.client.v1.webhook_endpoints.delete_async(endpoint.id)
        await sandbox.http.close_async()  # type: ignore[no-untyped-call]


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

"""The project's alerts in a real Prometheus scraping a running service (tests/e2e/prometheus.py:
the rules with every duration divided by 120, scraped and evaluated every 250 ms). Stripe failing
through the sandbox's faults fires CheckoutStripeFailureRatio, which resolves once the fault is
cleared; Postgres stopped fires CheckoutHighErrorRatio, and not the Stripe alert, which resolves
once Postgres is back.

Each test has a Stripe sandbox and a Postgres of its own: its faults and the sessions it makes
concern no other test (the other tests' sweep would expire them as orphans). Its Postgres runs in
a process of its own (chaos/pg_keeper.py): stopping and starting pgserver as root forks the
process that does it, and in this one, whose gRPC calls are in flight, such a child can crash in
gRPC's fork handlers.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import grpc
import pytest
import pytest_asyncio

from checkout.v1 import checkout_service_pb2 as api
from tests.e2e.helpers import Sandbox, cart_request, new_order_id
from tests.e2e.processes import replicas
from tests.e2e.prometheus import BINARY, MISSING, free_port, prometheus
from tests.support import ROOT, run_sandbox, stop_sandbox

pytestmark = pytest.mark.skipif(BINARY is None, reason=MISSING)

NAMESPACE = "checkout-e2e"
SESSIONS = "/v1/checkout/sessions"


class KeptPostgres:
    """chaos/pg_keeper.py's pgserver: `stop` and `start` on its standard input, one line each,
    answered `stopped` and `ready DSN`."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.dsn = ""

    async def answer(self, expected: str) -> str:
        assert self.process.stdout is not None
        line = (await asyncio.wait_for(self.process.stdout.readline(), 120)).decode().strip()
        assert line.startswith(expected), f"the keeper answered {line!r}, not {expected!r}"
        return line.removeprefix(expected).strip()

    async def stop(self) -> None:
        await self._command("stop", "stopped")

    async def start(self) -> None:
        assert await self._command("start", "ready") == self.dsn

    async def _command(self, command: str, expected: str) -> str:
        assert self.process.stdin is not None
        self.process.stdin.write(f"{command}\n".encode())
        await self.process.stdin.drain()
        return await self.answer(expected)


@pytest_asyncio.fixture
async def postgres(tmp_path: Path) -> AsyncIterator[KeptPostgres]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "chaos.pg_keeper",
        str(tmp_path / "pg"),
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    keeper = KeptPostgres(process)
    try:
        keeper.dsn = await keeper.answer("ready")
        yield keeper
    finally:
        assert process.stdin is not None
        process.stdin.close()  # end of input: the keeper stops Postgres and exits
        await asyncio.wait_for(process.wait(), 60)


@pytest_asyncio.fixture
async def stripe_sandbox() -> AsyncIterator[Sandbox]:
    running = await run_sandbox("--port", "0")
    view = Sandbox(running.url)
    try:
        yield view
    finally:
        await view.http.close_async()  # type: ignore[no-untyped-call]
        assert await stop_sandbox(running) == 0


@contextlib.asynccontextmanager
async def calling(call: Callable[[], Awaitable[object]]) -> AsyncIterator[None]:
    """Keep making `call`, one at a time, whatever it answers, for the duration of the block:
    the traffic whose failures the alerts measure."""

    async def loop() -> None:
        while True:
            with contextlib.suppress(grpc.aio.AioRpcError):
                await call()
            await asyncio.sleep(0.05)

    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_stripe_failing_fires_the_stripe_alert_until_the_fault_is_cleared(
    environ: dict[str, str], postgres: KeptPostgres, stripe_sandbox: Sandbox, tmp_path: Path
) -> None:
    # Prometheus starts first, on the port the service will take: its first scrape comes
    # seconds after its start, while the service starts.
    port = free_port()
    env = {
        **environ,
        "DATABASE_URL": postgres.dsn,
        "STRIPE_API_BASE": stripe_sandbox.url,
        "HTTP_ADDR": f"127.0.0.1:{port}",
    }
    async with (
        prometheus(tmp_path / "prometheus", {NAMESPACE: port}) as server,
        replicas(env, 1) as (replica,),
    ):

        async def create() -> object:
            return await replica.stub.CreateSession(cart_request(new_order_id()), timeout=5)

        async with calling(create):
            # Prometheus has seen Stripe's calls succeed, and the alert has nothing to say.
            await server.scraping(NAMESPACE)
            ok = 'checkout_stripe_requests_total{operation="create", outcome="ok"} > 0'
            await server.wait_until(ok)
            assert await server.state("CheckoutStripeFailureRatio", NAMESPACE) is None

            # Every create fails at Stripe's edge with a 503, as long as the fault lasts.
            stripe_sandbox.control(
                "POST",
                "/_sandbox/faults",
                {"path_prefix": SESSIONS, "method": "POST", "status": 503, "count": 1_000_000},
            )
            try:
                alert = await server.wait_for("CheckoutStripeFailureRatio", NAMESPACE, "firing")
            finally:
                stripe_sandbox.control("DELETE", "/_sandbox/faults")
            assert alert is not None
            assert alert.labels["severity"] == "warning"
            assert alert.annotations["runbook_url"] == "docs/runbook.md#checkoutstripefailureratio"
            assert alert.annotations["dashboard_url"].endswith(f"&var-namespace={NAMESPACE}")

            assert await server.wait_for("CheckoutStripeFailureRatio", NAMESPACE, None) is None


async def test_postgres_stopped_fires_the_error_alert_until_it_is_back(
    environ: dict[str, str], postgres: KeptPostgres, stripe_sandbox: Sandbox, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        **environ,
        "DATABASE_URL": postgres.dsn,
        "STRIPE_API_BASE": stripe_sandbox.url,
        "HTTP_ADDR": f"127.0.0.1:{port}",
        "DB_COMMAND_TIMEOUT_SECONDS": "2",
    }
    async with (
        prometheus(tmp_path / "prometheus", {NAMESPACE: port}) as server,
        replicas(env, 1) as (replica,),
    ):
        order_id = new_order_id()
        await replica.stub.CreateSession(cart_request(order_id), timeout=10)

        async def read() -> object:
            return await replica.stub.GetSession(
                api.GetSessionRequest(order_id=order_id), timeout=5
            )

        async with calling(read):
            await server.scraping(NAMESPACE)
            ok = 'grpc_server_handled_total{grpc_method="GetSession", grpc_code="OK"} > 0'
            await server.wait_until(ok)
            assert await server.state("CheckoutHighErrorRatio", NAMESPACE) is None

            await postgres.stop()  # every read answers UNAVAILABLE (DATABASE_UNAVAILABLE)
            try:
                alert = await server.wait_for("CheckoutHighErrorRatio", NAMESPACE, "firing")
                # The database, not Stripe: no call reached Stripe to fail.
                assert await server.state("CheckoutStripeFailureRatio", NAMESPACE) is None
            finally:
                await postgres.start()
            assert alert is not None
            assert alert.labels["severity"] == "critical"
            assert alert.annotations["runbook_url"] == "docs/runbook.md#checkouthigherrorratio"

            assert await server.wait_for("CheckoutHighErrorRatio", NAMESPACE, None) is None

"""The composition root: settings → Postgres → migrations → Stripe → servers, and the way back
down on SIGTERM. The only module that knows every layer (docs/architecture.md, "Layers")."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from contextlib import AsyncExitStack, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from aiohttp import web
from grpc_health.v1 import health

from service.config import CRASH_AFTER_STRIPE_CREATE, ConfigError, Settings
from service.domain.checkout import Checkout
from service.domain.errors import CheckoutError
from service.domain.ports import PaymentGateway
from service.domain.sync import StripeSync
from service.edge.http import build_http_app
from service.edge.server import build_grpc_server, set_serving
from service.edge.sweeper import sweep_forever
from service.gateway.faults import CrashAfterCreate
from service.gateway.stripe_gateway import StripeGateway
from service.gateway.webhooks import StripeWebhookVerifier
from service.store.change_feed import ChangeFeed
from service.store.leader import AdvisoryLock
from service.store.migrate import apply_migrations, load_migrations
from service.store.repository import PostgresLedger, create_pool, translate_db_errors

log = structlog.get_logger("service")

# Any constant unique to this service's sweep, distinct from the migrations' lock key.
SWEEP_LOCK_KEY = 0x7377656570  # "sweep"


class StartupError(Exception):
    """The service cannot start: a listen address is taken, say."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class Application:
    """A running service. `grpc_port`/`http_port` are the bound ports (useful with port 0)."""

    settings: Settings
    health: health.aio.HealthServicer
    grpc_port: int
    http_port: int
    stopping: asyncio.Event
    """Set at shutdown: /healthz answers 503 and watch streams end."""
    resources: AsyncExitStack
    """Everything `start` opened, closed in the reverse order."""

    async def stop(self) -> None:
        """Health NOT_SERVING → end watch streams → stop the sweep → stop accepting and drain
        in-flight unary RPCs within the grace → close the HTTP listener, Stripe's HTTP client,
        the change feed and the pool."""
        self.stopping.set()
        await self.health.enter_graceful_shutdown()
        await self.resources.aclose()


async def start(settings: Settings) -> Application:
    """Open every resource in order. A failure at any step closes what was already open, so a
    failed start leaves no pool, connection, listener or task behind."""
    async with AsyncExitStack() as stack:
        app = await _open(settings, stack)
        # Everything opened: from here on the Application owns the resources.
        app.resources = stack.pop_all()
        return app
    raise AssertionError("unreachable: the stack above either returns or raises")


async def _open(settings: Settings, stack: AsyncExitStack) -> Application:
    dsn = settings.database_url.value
    pool = await create_pool(
        dsn,
        max_size=settings.db_pool_max_size,
        command_timeout=settings.db_command_timeout_seconds,
    )
    stack.push_async_callback(pool.close)
    async with translate_db_errors(), pool.acquire() as conn:
        applied = await apply_migrations(conn, load_migrations())
    if applied:
        log.info("migrations applied", names=applied)
    feed = ChangeFeed(dsn)
    stack.push_async_callback(feed.close)
    async with translate_db_errors():
        await feed.start()
    gateway = StripeGateway.connect(
        api_key=settings.stripe_api_key.value,
        api_base=settings.stripe_api_base,
        timeout_seconds=settings.stripe_timeout_seconds,
        max_network_retries=settings.stripe_max_network_retries,
    )
    stack.push_async_callback(gateway.close)
    payments: PaymentGateway = gateway
    if settings.fault == CRASH_AFTER_STRIPE_CREATE:
        log.warning("fault injection on", fault=settings.fault)
        payments = CrashAfterCreate(gateway)
    ledger = PostgresLedger(pool)
    clock = SystemClock()
    checkout = Checkout(ledger, payments, feed, clock)
    sync = StripeSync(
        ledger,
        payments,
        checkout,
        clock,
        quiet_after=timedelta(seconds=settings.sweep_quiet_seconds),
    )
    verifier = None
    if settings.stripe_webhook_secret is not None:
        verifier = StripeWebhookVerifier(settings.stripe_webhook_secret.value)
    else:
        log.warning(
            "STRIPE_WEBHOOK_SECRET is not set: webhooks are refused, the sweep alone "
            "keeps sessions current"
        )

    stopping = asyncio.Event()
    grpc_server, health_servicer = build_grpc_server(checkout, stopping)
    try:
        grpc_port = grpc_server.add_insecure_port(str(settings.grpc_addr))
    except RuntimeError as exc:  # grpc's way of saying the address is taken or invalid
        raise StartupError(
            "ADDRESS_IN_USE", f"cannot listen for gRPC on {settings.grpc_addr}"
        ) from exc
    await grpc_server.start()
    stack.push_async_callback(grpc_server.stop, settings.shutdown_grace_seconds)

    http_runner = web.AppRunner(
        build_http_app(lambda: not stopping.is_set(), sync, verifier), access_log=None
    )
    await http_runner.setup()
    stack.push_async_callback(http_runner.cleanup)
    site = web.TCPSite(http_runner, settings.http_addr.bind_host, settings.http_addr.port)
    try:
        await site.start()
    except OSError as exc:
        raise StartupError(
            "ADDRESS_IN_USE", f"cannot listen for HTTP on {settings.http_addr}"
        ) from exc
    http_port = int(http_runner.addresses[0][1])

    sweep_lock = AdvisoryLock(dsn, SWEEP_LOCK_KEY)
    stack.push_async_callback(sweep_lock.close)
    sweeper = asyncio.get_running_loop().create_task(
        sweep_forever(sync, sweep_lock, settings.sweep_interval_seconds)
    )
    stack.push_async_callback(_cancel, sweeper)
    await set_serving(health_servicer, True)
    return Application(
        settings=settings,
        health=health_servicer,
        grpc_port=grpc_port,
        http_port=http_port,
        stopping=stopping,
        resources=stack,
    )


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with suppress(asyncio.CancelledError):
        await task


async def run(settings: Settings) -> None:
    app = await start(settings)
    log.info(
        "serving",
        grpc=f"{settings.grpc_addr.host}:{app.grpc_port}",
        http=f"{settings.http_addr.host}:{app.http_port}",
    )
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    await stopping.wait()
    log.info("stopping", grace_seconds=settings.shutdown_grace_seconds)
    await app.stop()
    log.info("stopped")


def configure_logging(settings: Settings) -> None:
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if settings.log_format == "json"
        else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[settings.log_level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
    )


def main() -> None:
    try:
        settings = Settings.from_environ()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(settings)
    log.info(
        "starting",
        postgres=settings.describe_postgres(),
        stripe=settings.describe_stripe(),
        grpc=str(settings.grpc_addr),
        http=str(settings.http_addr),
    )
    try:
        asyncio.run(run(settings))
    except (CheckoutError, StartupError) as exc:
        # A dependency is missing at start-up: say which, plainly, and let the orchestrator
        # restart us. The cause names the host, never the password.
        log.error("cannot start", reason=exc.reason, error=exc.message, cause=repr(exc.__cause__))
        raise SystemExit(1) from None

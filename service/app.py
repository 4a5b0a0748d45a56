"""The composition root: settings → Postgres → migrations → Stripe → servers, and the way back
down on SIGTERM. The only module that knows every layer (docs/architecture.md, "Layers")."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import sys
from contextlib import AsyncExitStack, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import asyncpg
import grpc
import structlog
import uvloop
from aiohttp import web
from grpc_health.v1 import health

from service.config import (
    CRASH_AFTER_STRIPE_CREATE,
    CRASH_AFTER_STRIPE_REFUND,
    Address,
    ConfigError,
    Settings,
)
from service.domain.checkout import Checkout
from service.domain.errors import CheckoutError
from service.domain.feed import EventFeed
from service.domain.feed_cursors import FeedCursors
from service.domain.page_tokens import PageTokens
from service.domain.payment_sync import PaymentSync
from service.domain.payments import Payments
from service.domain.ports import MoneyGateway, PaymentGateway
from service.domain.sync import StripeSync
from service.edge.callers import CallerDirectory, CallersFileError
from service.edge.http import build_http_app
from service.edge.payment_calls import PaymentCalls
from service.edge.quotas import CallerQuotas, Limits
from service.edge.readiness import Readiness
from service.edge.server import build_grpc_server, build_health_server, set_serving
from service.edge.servicer import WatchLimits
from service.edge.supervisor import Supervisor
from service.edge.sweeper import reconcile_after_failover, sweep_forever
from service.edge.tls import RotatingCertificate, TlsFilesError
from service.gateway.faults import CrashAfterCreate, CrashAfterRefund
from service.gateway.stripe_gateway import StripeGateway
from service.gateway.webhooks import StripeWebhookVerifier
from service.observability.metrics import Metrics
from service.observability.redaction import redact_credentials
from service.observability.tracing import add_trace_ids, start_tracing
from service.store.cached_ledger import CachedLedger
from service.store.cached_payments import CachedPayments
from service.store.change_feed import ChangeFeed
from service.store.db_errors import translate_db_errors
from service.store.failover import ServerWatch
from service.store.leader import AdvisoryLock
from service.store.migrate import apply_migrations, load_migrations, missing_migrations
from service.store.payment_ledger import PostgresPayments
from service.store.pool import DatabaseUrlError, create_pool, first_contact
from service.store.probe import database_answers
from service.store.repository import PostgresLedger
from service.store.signing_key import signing_key

log = structlog.get_logger("service")

# How long migrations (and the wait for another replica's) may take before start-up gives up.
_MIGRATION_SECONDS = 120.0
# How long the HTTP listener waits for open requests at shutdown.
_HTTP_SHUTDOWN_SECONDS = 5.0
# How often, and within how long, Postgres must answer for the replica to stay ready.
_READINESS_PROBE_SECONDS = 1.0
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


SYSTEM = SystemClock()


@dataclass
class Application:
    """A running service. `grpc_port`/`http_port` are the bound ports (useful with port 0)."""

    settings: Settings
    health: health.aio.HealthServicer
    grpc_port: int
    http_port: int
    health_port: int | None
    draining: asyncio.Event
    """Set at SIGTERM: readiness turns NOT_SERVING (gRPC health, /readyz, /healthz)."""
    stopping: asyncio.Event
    """Set once the drain delay is over: watch streams end, and the servers stop."""
    resources: AsyncExitStack
    """Everything `start` opened, closed in the reverse order."""

    async def stop(self) -> None:
        """Readiness NOT_SERVING → keep serving for the drain delay → end watch streams → stop
        the sweep → close the HTTP listener (bounded) → stop accepting gRPC and drain in-flight
        unary RPCs within the grace → close Stripe's HTTP client, the change feed and the pool."""
        self.draining.set()
        await self.health.enter_graceful_shutdown()
        # Load balancers and kube-proxy take a moment to stop routing here: keep serving.
        await asyncio.sleep(self.settings.drain_delay_seconds)
        self.stopping.set()
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
    # First, before anything connects or listens: a malformed callers file or a bad set of TLS
    # files is a configuration error.
    callers = None if settings.callers_file is None else CallerDirectory.load(settings.callers_file)
    certificate = None if settings.tls is None else RotatingCertificate(settings.tls)
    metrics = Metrics()
    supervisor = Supervisor(metrics)
    if settings.tracing is not None:
        provider = start_tracing(settings.tracing)
        stack.callback(provider.shutdown)
    watch = ServerWatch(on_change=metrics.ledger_reconciling.set)
    pool, feed, ledger = await _open_database(settings, stack, metrics, supervisor, watch)
    checkout, sync, payments = await _use_cases(settings, stack, pool, feed, ledger, metrics)
    events = await _event_feed(pool, feed, ledger)
    quotas = _caller_quotas(settings, callers, metrics)
    draining, stopping = asyncio.Event(), asyncio.Event()
    health_servicer = health.aio.HealthServicer()
    readiness = _readiness(health_servicer, draining, pool, supervisor, watch, sync, metrics)
    grpc_server = build_grpc_server(
        checkout,
        events,
        stopping,
        health_servicer,
        callers=callers,
        quotas=quotas,
        reflection_mode=settings.reflection,
        max_receive_bytes=settings.max_receive_bytes,
        watch_limits=WatchLimits(settings.watch_max_streams, settings.watch_max_seconds),
        metrics=metrics,
        traced=settings.tracing is not None,
        payments=PaymentCalls(payments, metrics),
        hold_writes=watch.refuse_while_behind,
    )
    grpc_port = await _serve_grpc(settings, stack, grpc_server, certificate)
    health_port = await _serve_health(settings, stack, health_servicer)
    verifier = _webhook_verifier(settings)
    http_port = await _serve_http(
        settings, stack, build_http_app(lambda: readiness.ready, sync, verifier, metrics, SYSTEM)
    )
    _start_background(settings, stack, supervisor, callers, quotas, sync, metrics)
    await set_serving(health_servicer, True)
    stack.push_async_callback(_cancel, supervisor.start("readiness", readiness.watch))
    return Application(
        settings=settings,
        health=health_servicer,
        grpc_port=grpc_port,
        http_port=http_port,
        health_port=health_port,
        draining=draining,
        stopping=stopping,
        resources=stack,
    )


def _readiness(
    health_servicer: health.aio.HealthServicer,
    draining: asyncio.Event,
    pool: asyncpg.Pool,
    supervisor: Supervisor,
    watch: ServerWatch,
    sync: StripeSync,
    metrics: Metrics,
) -> Readiness:
    """Ready while not draining, Postgres answers, the ledger is not behind Stripe after the
    database changed (which the probe's loop reconciles), and no background task is down."""
    readiness = Readiness(
        health_servicer,
        draining,
        lambda: database_answers(pool, within=_READINESS_PROBE_SECONDS),
        tasks_up=lambda: supervisor.all_up,
        ledger_behind=lambda: watch.behind,
        reconcile=partial(watch.reconcile, partial(reconcile_after_failover, sync, metrics)),
        interval_seconds=_READINESS_PROBE_SECONDS,
    )
    supervisor.on_change = readiness.recheck
    return readiness


def _start_background(
    settings: Settings,
    stack: AsyncExitStack,
    supervisor: Supervisor,
    callers: CallerDirectory | None,
    quotas: CallerQuotas,
    sync: StripeSync,
    metrics: Metrics,
) -> None:
    """The callers file's reload and the sweep, supervised, each cancelled at shutdown."""
    if callers is not None:
        watch = partial(callers.watch, settings.callers_reload_seconds, quotas.revoke)
        stack.push_async_callback(_cancel, supervisor.start("callers_reload", watch))
    sweep_lock = AdvisoryLock(settings.database_url.value, SWEEP_LOCK_KEY)
    stack.push_async_callback(sweep_lock.close)
    sweep = partial(sweep_forever, sync, sweep_lock, settings.sweep_interval_seconds, metrics)
    stack.push_async_callback(_cancel, supervisor.start("sweep", sweep))


def _caller_quotas(
    settings: Settings, callers: CallerDirectory | None, metrics: Metrics
) -> CallerQuotas:
    """Each caller's limits: its own from the callers file, else the settings' defaults."""
    defaults = Limits(
        max_streams=settings.caller_max_streams,
        stripe_calls_per_second=settings.caller_stripe_calls_per_second,
        stripe_burst=settings.caller_stripe_burst,
    )
    if callers is None:
        return CallerQuotas(lambda _: defaults, metrics)
    return CallerQuotas(partial(callers.limits, defaults=defaults), metrics)


async def _serve_grpc(
    settings: Settings,
    stack: AsyncExitStack,
    server: grpc.aio.Server,
    certificate: RotatingCertificate | None,
) -> int:
    """Listen on GRPC_ADDR, over TLS if configured; the port bound."""
    credentials = None if certificate is None else certificate.credentials()
    port = _listen(server, settings.grpc_addr, credentials)
    await server.start()
    stack.push_async_callback(server.stop, settings.shutdown_grace_seconds)
    return port


async def _serve_health(
    settings: Settings, stack: AsyncExitStack, health_servicer: health.aio.HealthServicer
) -> int | None:
    """The plaintext health listener on HEALTH_ADDR, if asked for; its port."""
    if settings.health_addr is None:
        return None
    health_server = build_health_server(health_servicer)
    port = _listen(health_server, settings.health_addr, None)
    await health_server.start()
    stack.push_async_callback(health_server.stop, 0)
    return port


async def _open_database(
    settings: Settings,
    stack: AsyncExitStack,
    metrics: Metrics,
    supervisor: Supervisor,
    watch: ServerWatch,
) -> tuple[asyncpg.Pool, ChangeFeed, CachedLedger]:
    """The pool (`watch` noting each new connection's server), the migrations (or the check
    that they were applied), the ledger (its reads cached, kept coherent by the change feed)
    and the change feed."""
    dsn = settings.database_url.value
    pool = await create_pool(
        dsn,
        max_size=settings.db_pool_max_size,
        command_timeout=settings.db_command_timeout_seconds,
        watch=watch,
    )
    stack.push_async_callback(pool.close)
    metrics.track_pool(lambda: pool.get_size() - pool.get_idle_size(), pool.get_size)
    # Read at each scrape, in the loop's own thread (the HTTP listener's handler).
    loop = asyncio.get_running_loop()
    metrics.track_tasks(lambda: len(asyncio.all_tasks(loop)))
    if settings.migrate_on_start:
        # A connection of its own, without the pool's per-statement bound: a migration, or the
        # wait for another replica's, may take longer than any query should.
        applied = await _apply_migrations(dsn)
        if applied:
            log.info("migrations applied", names=applied)
    async with translate_db_errors(), pool.acquire() as conn:
        if not settings.migrate_on_start and (
            missing := await missing_migrations(conn, load_migrations())
        ):
            raise StartupError(
                "SCHEMA_BEHIND",
                f"the database lacks migrations {', '.join(missing)}: run "
                "`python -m service migrate` (the migration Job) first",
            )
    postgres = PostgresLedger(
        pool,
        command_timeout=settings.db_command_timeout_seconds,
        on_transition=metrics.count_transition,
        on_event=metrics.count_event,
        watch=watch,
    )
    if settings.tracing is not None:
        postgres.trace_calls()
    ledger = CachedLedger(postgres)
    feed = ChangeFeed(dsn, listener=ledger, spawn=supervisor.start)
    stack.push_async_callback(feed.close)
    async with translate_db_errors():
        await feed.start()
    return pool, feed, ledger


async def _use_cases(
    settings: Settings,
    stack: AsyncExitStack,
    pool: asyncpg.Pool,
    feed: ChangeFeed,
    ledger: CachedLedger,
    metrics: Metrics,
) -> tuple[Checkout, StripeSync, Payments]:
    """Stripe, the ledger, and the use cases over them."""
    traced = settings.tracing is not None
    gateway = StripeGateway.connect(
        api_key=settings.stripe_api_key.value,
        api_base=settings.stripe_api_base,
        timeout_seconds=settings.stripe_timeout_seconds,
        max_network_retries=settings.stripe_max_network_retries,
    )
    stack.push_async_callback(gateway.close)
    gateway.observe(metrics, traced=traced)
    payments: PaymentGateway = gateway
    if settings.fault == CRASH_AFTER_STRIPE_CREATE:
        log.warning("fault injection on", fault=settings.fault)
        payments = CrashAfterCreate(gateway)
    checkout = Checkout(
        ledger,
        payments,
        feed,
        SYSTEM,
        PageTokens(await signing_key(pool)),
        default_tax_behavior=settings.default_tax_behavior,
    )
    # A pending row is left to its creator for as long as its Stripe call may take.
    pending_grace = timedelta(seconds=gateway.call_timeout + 5)
    money, money_sync = _payments(settings, pool, ledger, checkout, gateway, metrics)
    sync = StripeSync(
        ledger,
        payments,
        checkout,
        SYSTEM,
        quiet_after=timedelta(seconds=settings.sweep_quiet_seconds),
        pending_grace=pending_grace,
        event_retention=timedelta(days=settings.event_retention_days),
        money=money_sync,
    )
    return checkout, sync, money


def _payments(
    settings: Settings,
    pool: asyncpg.Pool,
    ledger: CachedLedger,
    checkout: Checkout,
    gateway: StripeGateway,
    metrics: Metrics,
) -> tuple[Payments, PaymentSync]:
    """The money after checkout: its ledger beside the sessions' cache, its use cases, and its
    part of the webhooks and of the sweep."""
    store = PostgresPayments(
        pool,
        command_timeout=settings.db_command_timeout_seconds,
        on_transition=metrics.count_payment,
        on_event=metrics.count_event,
    )
    if settings.tracing is not None:
        store.trace_calls()
    payments = CachedPayments(store, ledger)
    stripe: MoneyGateway = gateway
    if settings.fault == CRASH_AFTER_STRIPE_REFUND:
        log.warning("fault injection on", fault=settings.fault)
        stripe = CrashAfterRefund(gateway)
    money = Payments(checkout, ledger, payments, stripe, SYSTEM)
    sync = PaymentSync(
        ledger,
        payments,
        money,
        checkout,
        stripe,
        SYSTEM,
        quiet_after=timedelta(seconds=settings.sweep_quiet_seconds),
        # An operation is left to its caller for as long as its Stripe call may take.
        pending_grace=timedelta(seconds=gateway.call_timeout + 5),
    )
    return money, sync


async def _event_feed(pool: asyncpg.Pool, feed: ChangeFeed, ledger: CachedLedger) -> EventFeed:
    """The event feed: the ledger's events, woken by the change feed, its cursors sealed with
    the key every replica shares (as page tokens are, under a key of their own)."""
    return EventFeed(ledger, feed, FeedCursors(await signing_key(pool)))


def _webhook_verifier(settings: Settings) -> StripeWebhookVerifier | None:
    if not settings.webhook_secrets:
        log.warning(
            "STRIPE_WEBHOOK_SECRET is not set: webhooks are refused, the sweep alone "
            "keeps sessions current"
        )
        return None
    return StripeWebhookVerifier(settings.webhook_secrets)


async def _serve_http(settings: Settings, stack: AsyncExitStack, app: web.Application) -> int:
    """Listen on HTTP_ADDR; the port bound."""
    runner = web.AppRunner(
        app,
        access_log=None,
        # aiohttp waits 60 s for open requests by default; a webhook Stripe retries anyway.
        shutdown_timeout=min(settings.shutdown_grace_seconds, _HTTP_SHUTDOWN_SECONDS),
        # aiohttp has no timeout for reading a request's head, but its keep-alive timer runs
        # from the moment a connection opens (and again after each response) and closes the
        # connection if no complete request head has arrived by then, whatever bytes of one
        # did: a client that sends half a request line and waits (slow loris) is cut off at
        # this timeout (web_protocol.py, https://github.com/aio-libs/aiohttp/pull/13681).
        keepalive_timeout=settings.http_header_timeout_seconds,
    )
    await runner.setup()
    stack.push_async_callback(runner.cleanup)
    site = web.TCPSite(runner, settings.http_addr.bind_host, settings.http_addr.port)
    try:
        await site.start()
    except OSError as exc:
        raise StartupError(
            "ADDRESS_IN_USE", f"cannot listen for HTTP on {settings.http_addr}"
        ) from exc
    return int(runner.addresses[0][1])


def _listen(
    server: grpc.aio.Server, address: Address, credentials: grpc.ServerCredentials | None
) -> int:
    try:
        if credentials is None:
            return int(server.add_insecure_port(str(address)))
        return int(server.add_secure_port(str(address), credentials))
    except RuntimeError as exc:  # grpc's way of saying the address is taken or invalid
        raise StartupError("ADDRESS_IN_USE", f"cannot listen for gRPC on {address}") from exc


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with suppress(asyncio.CancelledError):
        await task


async def run(settings: Settings) -> None:
    # Signals first: a SIGTERM that comes as soon as "serving" is logged (or during the start)
    # must drain, not kill the process with Python's default action.
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    app = await start(settings)
    # What the start made (modules, the contract's descriptors, the clients) lives as long as
    # the process: out of the collector's sight, a full collection walks only what serving
    # makes, a few milliseconds instead of some 50 ms with the loop stopped (make bench saw
    # both). https://docs.python.org/3/library/gc.html#gc.freeze
    gc.freeze()
    # Every RPC allocates hundreds of short-lived objects (gRPC's, asyncio's, ours): with the
    # default threshold of 700 the youngest generation is collected every call or two, and the
    # objects of the calls still in flight are promoted and walked again later. At 10,000 a
    # reused CreateSession cost about a quarter less CPU in `make bench`, for a few MB at most.
    gc.set_threshold(10_000)
    log.info(
        "serving",
        grpc=f"{settings.grpc_addr.host}:{app.grpc_port}",
        http=f"{settings.http_addr.host}:{app.http_port}",
        **(
            {"health": f"{settings.health_addr.host}:{app.health_port}"}
            if settings.health_addr is not None
            else {}
        ),
    )
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
            add_trace_ids,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            # Last before rendering, so that it sees every string, tracebacks included.
            redact_credentials,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[settings.log_level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
        # Each module's logger is built once, not on every call it logs (or skips at its
        # level): https://www.structlog.org/en/stable/performance.html
        cache_logger_on_first_use=True,
    )


def main(argv: list[str] | None = None) -> None:
    """`python -m service` serves; `python -m service migrate` applies migrations and exits."""
    command = (sys.argv[1:] if argv is None else argv)[:1]
    if command not in ([], ["serve"], ["migrate"]):
        print("usage: python -m service [serve | migrate]", file=sys.stderr)
        raise SystemExit(2)
    try:
        settings = Settings.from_environ()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(settings)
    if command == ["migrate"]:
        _migrate(settings)
        return
    log.info(
        "starting",
        postgres=settings.describe_postgres(),
        stripe=settings.describe_stripe(),
        grpc=str(settings.grpc_addr),
        http=str(settings.http_addr),
        callers=settings.describe_callers(),
        tls=settings.describe_tls(),
    )
    try:
        # uvloop: a faster event loop for both gRPC and asyncpg (make bench measures it).
        uvloop.run(run(settings))
    except (CallersFileError, TlsFilesError, DatabaseUrlError) as exc:
        # A file or DATABASE_URL is wrong: the message says which and where, never what it holds.
        log.error("cannot start", reason="CONFIGURATION", error=str(exc))
        raise SystemExit(2) from None
    except (CheckoutError, StartupError) as exc:
        # A dependency is missing at start-up: say which, plainly, and let the orchestrator
        # restart us. The cause names the host, never the password.
        log.error("cannot start", reason=exc.reason, error=exc.message, **_cause(exc))
        raise SystemExit(1) from None


def _cause(exc: BaseException) -> dict[str, str]:
    """The exception behind a failed start, for its log line (its repr: a class and Postgres's
    or the OS's words, never a password)."""
    return {} if exc.__cause__ is None else {"cause": repr(exc.__cause__)}


async def _apply_migrations(dsn: str) -> list[str]:
    async with translate_db_errors(within=_MIGRATION_SECONDS), first_contact():
        conn = await asyncpg.connect(dsn)
        try:
            return await apply_migrations(conn, load_migrations())
        finally:
            await conn.close()


def _migrate(settings: Settings) -> None:
    log.info("migrating", postgres=settings.describe_postgres())
    try:
        applied = asyncio.run(_apply_migrations(settings.database_url.value))
    except DatabaseUrlError as exc:
        log.error("cannot migrate", reason="CONFIGURATION", error=str(exc))
        raise SystemExit(2) from None
    except CheckoutError as exc:
        log.error("cannot migrate", reason=exc.reason, error=exc.message, **_cause(exc))
        raise SystemExit(1) from None
    log.info("migrations applied", names=applied, count=len(applied))

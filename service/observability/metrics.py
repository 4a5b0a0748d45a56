"""Prometheus metrics, served at /metrics on the HTTP port.

RPC metrics use the names and labels of the gRPC ecosystem's exporters
(https://github.com/grpc-ecosystem/go-grpc-middleware/tree/main/providers/prometheus), so that
existing dashboards work. Every label value comes from a small fixed set: methods, codes,
operations, event types, outcomes, background tasks, and the callers' names, which CALLERS_FILE
bounds (`checkout_caller_*`). Order, session and request ids never become labels.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)

from service.domain.model import LedgerState

# From a millisecond (a read served from memory) to the longest Stripe call we allow.
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
# Webhooks arrive within a second normally, and up to days later when Stripe retries.
_LAG_BUCKETS = (0.1, 0.5, 1, 2, 5, 15, 60, 300, 900, 3600, 21600, 86400, 259200)
# An event reaches open streams within tens of milliseconds normally; a second is the bound
# asked of it, and one held back by a long transaction waits as long as that transaction.
_DELIVERY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15, 60)


class Metrics:
    """One set of metrics per running service, in a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._calls(self.registry)
        self._background(self.registry)
        self._shares(self.registry)
        self._feed(self.registry)
        self.db_pool_in_use = Gauge(
            "checkout_db_pool_in_use",
            "Postgres connections of the pool in use.",
            registry=self.registry,
        )
        self.sessions = Counter(
            "checkout_sessions_total",
            "Checkout Sessions by what happened to them: created, completed, expired.",
            ("event",),
            registry=self.registry,
        )
        self.watch_streams = Gauge(
            "checkout_watch_streams",
            "Open WatchSession streams on this replica.",
            registry=self.registry,
        )
        self._money(self.registry)
        self._process(self.registry)

    def _calls(self, r: CollectorRegistry) -> None:
        """The calls the service answers and makes: RPCs, Stripe's API."""
        rpc = ("grpc_type", "grpc_service", "grpc_method")
        self.rpc_started = Counter(
            "grpc_server_started_total", "RPCs started on the server.", rpc, registry=r
        )
        self.rpc_handled = Counter(
            "grpc_server_handled_total",
            "RPCs completed on the server, by status code.",
            (*rpc, "grpc_code"),
            registry=r,
        )
        self.rpc_seconds = Histogram(
            "grpc_server_handling_seconds",
            "Time from the start of an RPC to its status.",
            rpc,
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.stripe_requests = Counter(
            "checkout_stripe_requests_total",
            "Calls to Stripe by operation and outcome (ok, refused, missing, rate_limited, "
            "timeout, unavailable, misconfigured, spent_key, deadline, throttled, error).",
            ("operation", "outcome"),
            registry=r,
        )
        self.stripe_seconds = Histogram(
            "checkout_stripe_request_seconds",
            "Time of a Stripe operation, its own retries included.",
            ("operation",),
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )

    def _background(self, r: CollectorRegistry) -> None:
        """What keeps the ledger current: webhooks and the sweep."""
        self.webhook_events = Counter(
            "checkout_webhook_events_total",
            "Stripe webhooks by event type and result (applied, duplicate, ignored, deferred, "
            "refused, failed).",
            ("type", "result"),
            registry=r,
        )
        self.webhook_lag = Histogram(
            "checkout_webhook_lag_seconds",
            "From Stripe creating an event to the service applying it.",
            buckets=_LAG_BUCKETS,
            registry=r,
        )
        self.sweep_runs = Counter(
            "checkout_sweep_runs_total",
            "Reconciliation sweep passes on this replica, by result (ok, failed, skipped: "
            "another replica holds the lock).",
            ("result",),
            registry=r,
        )
        self.sweep_repairs = Counter(
            "checkout_sweep_repairs_total",
            "What the sweep set right: rows brought up to date (updated), sessions Stripe no "
            "longer knows (missing), events no webhook brought (caught_up), open sessions no row "
            "held, expired (orphan), sessions no row held, adopted into the ledger (adopted), "
            "payments that lagged Stripe (payment_updated), captures, cancels and refunds left "
            "pending and now settled (operation_resumed); and rows it failed on (failed).",
            ("kind",),
            registry=r,
        )
        self.orders_paid_twice = Counter(
            "checkout_orders_paid_twice_total",
            "Orders found paid through two sessions (one the ledger did not know), each time "
            "one is found (by a webhook Stripe retries, or a scan): refund one of the two.",
            registry=r,
        )
        self.ledger_reconciling = Gauge(
            "checkout_ledger_reconciling",
            "1 while the ledger may lack sessions Stripe has, after the database changed (a "
            "failover or a restart), until it is reconciled with Stripe: not ready, and the "
            "calls that act on an order wait.",
            registry=r,
        )
        self.pending_oldest_age = Gauge(
            "checkout_pending_rows_oldest_age_seconds",
            "Age of the oldest ledger row still waiting for Stripe's answer (0: none).",
            registry=r,
        )

    def _shares(self, r: CollectorRegistry) -> None:
        """Each caller's share of the service, and the background tasks that keep it running."""
        self.caller_streams = Gauge(
            "checkout_caller_streams",
            "Open streams on this replica, by caller.",
            ("caller",),
            registry=r,
        )
        self.caller_stripe_requests = Counter(
            "checkout_caller_stripe_requests_total",
            "Calls to Stripe made on a caller's behalf (the sweep and webhooks are no caller's).",
            ("caller",),
            registry=r,
        )
        self.caller_refusals = Counter(
            "checkout_caller_quota_refusals_total",
            "Calls refused with RESOURCE_EXHAUSTED because the caller used up its share, by "
            "caller and limit (streams, stripe_calls).",
            ("caller", "limit"),
            registry=r,
        )
        self.task_failures = Counter(
            "checkout_background_task_failures_total",
            "Unexpected failures of a long-lived background task, each followed by a restart.",
            ("task",),
            registry=r,
        )
        self.task_up = Gauge(
            "checkout_background_task_up",
            "1 while a background task runs, 0 while it is down after repeated failures.",
            ("task",),
            registry=r,
        )

    def _feed(self, r: CollectorRegistry) -> None:
        """The event feed: what is written to it, and how it reaches the open streams."""
        self.feed_events = Counter(
            "checkout_feed_events_total",
            "Events written to the feed, by type (order_paid, payment_processing, "
            "payment_failed, session_expired; after checkout payment_authorized, "
            "payment_captured, authorization_released, payment_refunded, refund_failed, "
            "dispute_opened, dispute_closed), counted once by the replica that wrote each.",
            ("type",),
            registry=r,
        )
        self.feed_streams = Gauge(
            "checkout_feed_streams",
            "Open StreamEvents streams on this replica.",
            registry=r,
        )
        self.feed_delivery = Histogram(
            "checkout_feed_delivery_seconds",
            "From an event's writing to its sending on an open stream, for each stream that "
            "follows the feed live (not events replayed from a cursor).",
            buckets=_DELIVERY_BUCKETS,
            registry=r,
        )
        self.feed_pruned = Counter(
            "checkout_feed_events_pruned_total",
            "Events deleted from the feed as older than EVENT_RETENTION_DAYS.",
            registry=r,
        )

    def count_event(self, event_type: str) -> None:
        """An event was written to the feed (PostgresLedger's and PostgresPayments'
        on_event)."""
        self.feed_events.labels(event_type).inc()

    def _money(self, r: CollectorRegistry) -> None:
        """The money after checkout: what callers asked, and what happened to payments."""
        self.payment_operations = Counter(
            "checkout_payment_operations_total",
            "CapturePayment, CancelPayment and RefundPayment calls, by caller, operation "
            "(capture, cancel, refund) and outcome (the final gRPC code: OK, "
            "FAILED_PRECONDITION, …).",
            ("caller", "operation", "code"),
            registry=r,
        )
        self.payment_transitions = Counter(
            "checkout_payment_transitions_total",
            "What happened to payments after checkout, each counted once by the pod that "
            "stored it: authorised, captured, released, lapsed, refunded, refund_failed, "
            "dispute_opened, dispute_closed.",
            ("transition",),
            registry=r,
        )

    def _process(self, r: CollectorRegistry) -> None:
        """What the process holds, to find a slow leak (`make soak`): memory and file
        descriptors (prometheus-client's `process_*`, from /proc), asyncio tasks, and the
        pool's connections."""
        ProcessCollector(registry=r)
        self.asyncio_tasks = Gauge(
            "checkout_asyncio_tasks",
            "Tasks of the event loop not done yet: one per RPC in flight, per open stream, "
            "per background task.",
            registry=r,
        )
        self.db_pool_connections = Gauge(
            "checkout_db_pool_connections",
            "Postgres connections the pool holds open, in use or idle.",
            registry=r,
        )

    def count_payment(self, transition: str) -> None:
        self.payment_transitions.labels(transition).inc()

    def count_transition(self, before: LedgerState, after: LedgerState) -> None:
        """A ledger row changed state: its session was created when the row left `pending`,
        and completed or expired when it became so. The ledger reports each change once,
        whichever replica makes it (PostgresLedger)."""
        if before == LedgerState.PENDING:
            self.sessions.labels("created").inc()
        if after == LedgerState.COMPLETE:
            self.sessions.labels("completed").inc()
        elif after == LedgerState.EXPIRED:
            self.sessions.labels("expired").inc()

    def track_pool(self, in_use: Callable[[], float], opened: Callable[[], float]) -> None:
        self.db_pool_in_use.set_function(in_use)
        self.db_pool_connections.set_function(opened)

    def track_tasks(self, count: Callable[[], float]) -> None:
        self.asyncio_tasks.set_function(count)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

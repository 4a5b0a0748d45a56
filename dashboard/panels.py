"""What the checkout dashboard shows, row by row. A panel is a `Chart` of one or more PromQL
queries over the service's metrics (docs/runbook.md#metrics); adding one is a few lines in its
row.

Each chart's `id` is its panel id in Grafana, and stays with it: an alert's `dashboard_url`
(deploy/k8s/components/monitoring/prometheus-rules.yaml) and its runbook section open the
panel by it (`?viewPanel=<id>`), so ids are never reused or renumbered. Each row takes a block
of ten. A chart that explains an alert names it, and draws the alert's threshold; its query
uses the alert's own window, so that the line crosses the threshold when the alert's
expression does.
"""

from __future__ import annotations

from dataclasses import dataclass

# Every query reads the ServiceMonitor's scrape (its job is the checkout-http Service's name)
# in the namespace picked at the top of the dashboard.
SCRAPE = 'job="checkout-http", namespace="$namespace"'
# The codes that mean the service, not the caller, failed, and the Stripe outcomes that are
# failures: the same sets as the alerts CheckoutHighErrorRatio and CheckoutStripeFailureRatio.
SERVER_ERRORS = (
    'grpc_code=~"UNKNOWN|INTERNAL|UNAVAILABLE|DEADLINE_EXCEEDED|DATA_LOSS|UNIMPLEMENTED"'
)
STRIPE_FAILURES = 'outcome!~"ok|refused|missing|deadline"'
# Grafana's window for rate(): at least four scrape intervals, whatever the zoom
# (https://grafana.com/docs/grafana/latest/datasources/prometheus/template-variables/).
RATE = "$__rate_interval"


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str


@dataclass(frozen=True)
class Chart:
    id: int
    title: str
    description: str
    unit: str  # Grafana's unit id: reqps, percentunit, s, short, …
    queries: tuple[Query, ...]
    alert: str | None = None
    threshold: float | None = None


@dataclass(frozen=True)
class Row:
    id: int
    title: str
    charts: tuple[Chart, ...]


def ratio(metric: str, failed: str, by: str, window: str) -> str:
    """The share of `metric`'s increase that matches `failed`, by the labels in `by`."""
    return (
        f"sum by ({by}) (rate({metric}{{{SCRAPE}, {failed}}}[{window}]))\n"
        f"/\nsum by ({by}) (rate({metric}{{{SCRAPE}}}[{window}]))"
    )


def quantile(q: float, histogram: str, by: str, window: str = RATE) -> str:
    labels = ", ".join(filter(None, (by, "le")))
    return (
        f"histogram_quantile({q}, sum by ({labels}) "
        f"(rate({histogram}_bucket{{{SCRAPE}}}[{window}])))"
    )


def percentiles(histogram: str, by: str) -> tuple[Query, ...]:
    """The median and the 95th percentile of `histogram`, one series per value of `by`."""
    return tuple(
        Query(quantile(q, histogram, by), f"{{{{{by}}}}} p{round(q * 100)}") for q in (0.5, 0.95)
    )


def per_second(metric: str, by: str) -> str:
    return f"sum by ({by}) (rate({metric}{{{SCRAPE}}}[{RATE}]))"


CALLS = Row(
    1,
    "Calls",
    (
        Chart(
            2,
            "RPCs by method",
            "RPCs finished per second, whatever their code.",
            "reqps",
            (Query(per_second("grpc_server_handled_total", "grpc_method"), "{{grpc_method}}"),),
        ),
        Chart(
            3,
            "Server-side errors by method",
            "Share of RPCs that ended with a code meaning the service failed (UNKNOWN, INTERNAL, "
            "UNAVAILABLE, DEADLINE_EXCEEDED, DATA_LOSS, UNIMPLEMENTED) over 5 minutes; callers' "
            "mistakes and ABORTED do not count. Which codes: Answers by code.",
            "percentunit",
            (
                Query(
                    ratio("grpc_server_handled_total", SERVER_ERRORS, "grpc_method", "5m"),
                    "{{grpc_method}}",
                ),
                Query(
                    ratio("grpc_server_handled_total", SERVER_ERRORS, "namespace", "5m"),
                    "every method",
                ),
            ),
            alert="CheckoutHighErrorRatio",
            threshold=0.05,
        ),
        Chart(
            4,
            "Answers by code",
            "RPCs finished per second, by status code and method.",
            "reqps",
            (
                Query(
                    per_second("grpc_server_handled_total", "grpc_code, grpc_method"),
                    "{{grpc_code}} {{grpc_method}}",
                ),
            ),
        ),
        Chart(
            5,
            "Latency by method",
            "Time from an RPC's start to its status: median and 95th percentile.",
            "s",
            percentiles("grpc_server_handling_seconds", "grpc_method"),
        ),
        Chart(
            6,
            "Checkout Sessions by event",
            "Sessions created, completed and expired per second, each counted once by the pod "
            "that stored it.",
            "cps",
            (Query(per_second("checkout_sessions_total", "event"), "{{event}}"),),
        ),
    ),
)

STRIPE = Row(
    10,
    "Stripe",
    (
        Chart(
            11,
            "Stripe calls failing, by operation",
            "Share of calls to Stripe that failed (rate limited, timed out, unavailable, the key "
            "refused, a bug) over 5 minutes; Stripe refusing a request, an unknown session and "
            "calls not started for the caller's deadline do not count. Which: Stripe calls by "
            "outcome.",
            "percentunit",
            (
                Query(
                    ratio("checkout_stripe_requests_total", STRIPE_FAILURES, "operation", "5m"),
                    "{{operation}}",
                ),
                Query(
                    ratio("checkout_stripe_requests_total", STRIPE_FAILURES, "namespace", "5m"),
                    "every operation",
                ),
            ),
            alert="CheckoutStripeFailureRatio",
            threshold=0.10,
        ),
        Chart(
            12,
            "Stripe calls by outcome",
            "Calls to Stripe per second, by operation and outcome (docs/runbook.md#metrics).",
            "reqps",
            (
                Query(
                    per_second("checkout_stripe_requests_total", "operation, outcome"),
                    "{{operation}} {{outcome}}",
                ),
            ),
        ),
        Chart(
            13,
            "Stripe latency by operation",
            "Time of a Stripe operation, its retries included: median and 95th percentile.",
            "s",
            percentiles("checkout_stripe_request_seconds", "operation"),
        ),
    ),
)

WEBHOOKS_AND_SWEEP = Row(
    20,
    "Webhooks and the sweep",
    (
        Chart(
            21,
            "Webhook lag",
            "From a Stripe event's creation to its application by webhook: the 95th percentile "
            "over 10 minutes, and the median. Events the sweep caught up are not in it.",
            "s",
            (
                Query(quantile(0.95, "checkout_webhook_lag_seconds", "", "10m"), "p95"),
                Query(quantile(0.5, "checkout_webhook_lag_seconds", ""), "p50"),
            ),
            alert="CheckoutWebhookLagHigh",
            threshold=120,
        ),
        Chart(
            22,
            "Webhook deliveries by result",
            "Webhook deliveries per second by result: applied, duplicate, ignored (200), "
            "deferred (503), refused (400, 408), failed (500).",
            "reqps",
            (Query(per_second("checkout_webhook_events_total", "result"), "{{result}}"),),
        ),
        Chart(
            23,
            "Sweep repairs in the last hour",
            "What the sweep set right in the hour before each point, by kind; rows it failed on "
            "(failed) are not repairs.",
            "short",
            (
                Query(
                    f"sum by (kind) (increase(checkout_sweep_repairs_total{{{SCRAPE}}}[1h]))",
                    "{{kind}}",
                ),
                Query(
                    "sum by (namespace) "
                    f'(increase(checkout_sweep_repairs_total{{{SCRAPE}, kind!="failed"}}[1h]))',
                    "repairs",
                ),
            ),
            alert="CheckoutSweepRepairing",
            threshold=5,
        ),
        Chart(
            24,
            "Sweep passes in the last 15 minutes",
            "Passes tried in the 15 minutes before each point, by result: ok, failed, skipped "
            "(another pod's pass held the lock). No ok at all is a stalled sweep.",
            "short",
            (
                Query(
                    f"sum by (result) (increase(checkout_sweep_runs_total{{{SCRAPE}}}[15m]))",
                    "{{result}}",
                ),
            ),
            alert="CheckoutSweepStalled",
        ),
        Chart(
            25,
            "Oldest pending row",
            "Age of the oldest ledger row whose Stripe call has no known outcome, as of each "
            "pod's last sweep pass (0: none).",
            "s",
            (
                Query(
                    f"max by (pod) (checkout_pending_rows_oldest_age_seconds{{{SCRAPE}}})",
                    "{{pod}}",
                ),
            ),
            alert="CheckoutPendingRowsStale",
            threshold=900,
        ),
    ),
)

CAPACITY = Row(
    30,
    "Capacity",
    (
        Chart(
            31,
            "Postgres connections in use, by pod",
            "Pooled connections in use; each pod has DB_POOL_MAX_SIZE of them.",
            "short",
            (Query(f"sum by (pod) (checkout_db_pool_in_use{{{SCRAPE}}})", "{{pod}}"),),
        ),
        Chart(
            32,
            "Open WatchSession streams, by pod",
            "Open streams; each pod takes at most WATCH_MAX_STREAMS.",
            "short",
            (Query(f"sum by (pod) (checkout_watch_streams{{{SCRAPE}}})", "{{pod}}"),),
        ),
        Chart(
            33,
            "Resident memory, by pod",
            "Each pod's resident memory. It grows as the read caches fill with the orders "
            "callers ask about, and then holds (the README's Soak says how far).",
            "bytes",
            (Query(f"max by (pod) (process_resident_memory_bytes{{{SCRAPE}}})", "{{pod}}"),),
        ),
        Chart(
            34,
            "Open file descriptors and asyncio tasks, by pod",
            "File descriptors the process holds (sockets: gRPC, Postgres, Stripe) and the event "
            "loop's tasks not done (one per RPC in flight, per open stream, per background "
            "task): both follow the load, and neither grows with time.",
            "short",
            (
                Query(f"max by (pod) (process_open_fds{{{SCRAPE}}})", "{{pod}} descriptors"),
                Query(f"max by (pod) (checkout_asyncio_tasks{{{SCRAPE}}})", "{{pod}} tasks"),
            ),
        ),
        Chart(
            35,
            "Postgres connections the pool holds, by pod",
            "Pooled connections open, in use or idle: at most DB_POOL_MAX_SIZE (beside the "
            "change feed's and the sweep lock's).",
            "short",
            (Query(f"max by (pod) (checkout_db_pool_connections{{{SCRAPE}}})", "{{pod}}"),),
        ),
    ),
)

FAILOVER = Row(
    50,
    "Database failover and adoption",
    (
        Chart(
            51,
            "Pods reconciling their ledger with Stripe",
            "1 while a pod's database changed (a failover or a restart) and it has not yet "
            "reconciled its ledger with Stripe: it is not ready, and CreateSession, "
            "ExpireSession and the money calls answer LEDGER_RECONCILING. Seconds normally; "
            "long, Stripe cannot be reached (docs/runbook.md, A Postgres failover).",
            "short",
            (
                Query(
                    f"max by (pod) (checkout_ledger_reconciling{{{SCRAPE}}})",
                    "{{pod}}",
                ),
            ),
            alert="CheckoutLedgerReconciling",
            threshold=0,
        ),
        Chart(
            52,
            "Orders paid twice in the last hour",
            "Times in the hour before each point that an order was found paid through two "
            "sessions, one the ledger did not know (a recovered cart's copy, a session a "
            "failover lost): refund one of the two (docs/runbook.md, An order paid twice).",
            "short",
            (
                Query(
                    "sum by (namespace) "
                    f"(increase(checkout_orders_paid_twice_total{{{SCRAPE}}}[1h]))",
                    "orders paid twice",
                ),
            ),
            alert="CheckoutOrderPaidTwice",
            threshold=0,
        ),
        Chart(
            53,
            "Sessions adopted from Stripe in the last hour",
            "Sessions Stripe had and the ledger did not, adopted into it in the hour before each "
            "point, by pod: a recovered cart's copy, an answer lost, a row a failover lost.",
            "short",
            (
                Query(
                    "sum by (pod) (increase(checkout_sweep_repairs_total"
                    f'{{{SCRAPE}, kind="adopted"}}[1h]))',
                    "{{pod}}",
                ),
            ),
        ),
    ),
)

EVENT_FEED = Row(
    40,
    "Event feed",
    (
        Chart(
            41,
            "Feed events written, by type",
            "Events written to the feed per second (each with the ledger change that caused it), "
            "by type: order_paid, payment_processing, payment_failed, session_expired, and "
            "after checkout payment_authorized, payment_captured, authorization_released, "
            "payment_refunded, refund_failed, dispute_opened, dispute_closed.",
            "cps",
            (Query(per_second("checkout_feed_events_total", "type"), "{{type}}"),),
        ),
        Chart(
            42,
            "Feed delivery latency",
            "From an event's writing to its sending on each open stream that follows the feed "
            "live: the 99th percentile over 5 minutes, and the median. An old transaction left "
            "running in the database holds every event back (docs/runbook.md, Replay a "
            "caller's feed).",
            "s",
            (
                Query(quantile(0.99, "checkout_feed_delivery_seconds", "", "5m"), "p99"),
                Query(quantile(0.5, "checkout_feed_delivery_seconds", ""), "p50"),
            ),
        ),
        Chart(
            43,
            "Open StreamEvents streams, by pod",
            "Open event streams; with WatchSession's, each pod takes at most WATCH_MAX_STREAMS.",
            "short",
            (Query(f"sum by (pod) (checkout_feed_streams{{{SCRAPE}}})", "{{pod}}"),),
        ),
        Chart(
            44,
            "Feed events pruned in the last day",
            "Events the sweep deleted as older than EVENT_RETENTION_DAYS in the day before each "
            "point.",
            "short",
            (
                Query(
                    "sum by (namespace) "
                    f"(increase(checkout_feed_events_pruned_total{{{SCRAPE}}}[1d]))",
                    "pruned",
                ),
            ),
        ),
    ),
)

PAYMENTS = Row(
    60,
    "Payments after checkout",
    (
        Chart(
            61,
            "Captures, cancels and refunds by caller and outcome",
            "CapturePayment, CancelPayment and RefundPayment calls per second, by caller, "
            "operation and final code: FAILED_PRECONDITION is a refusal of the payment's state "
            "(nothing to capture, more than was captured), PERMISSION_DENIED a caller without "
            "may_refund.",
            "reqps",
            (
                Query(
                    per_second("checkout_payment_operations_total", "caller, operation, code"),
                    "{{caller}} {{operation}} {{code}}",
                ),
            ),
        ),
        Chart(
            62,
            "Payment transitions in the last hour",
            "What happened to payments in the hour before each point, each counted once by the "
            "pod that stored it: authorised, captured, released, lapsed, refunded, "
            "refund_failed, dispute_opened, dispute_closed.",
            "short",
            (
                Query(
                    "sum by (transition) "
                    f"(increase(checkout_payment_transitions_total{{{SCRAPE}}}[1h]))",
                    "{{transition}}",
                ),
            ),
        ),
        Chart(
            63,
            "Failed refunds and disputes in the last day",
            "Refunds a customer's bank or card refused after all, and disputes opened, in the 24 "
            "hours before each point: each needs someone (docs/runbook.md, A refund failed; A "
            "customer disputed a payment).",
            "short",
            (
                Query(
                    "sum by (transition) (increase(checkout_payment_transitions_total"
                    f'{{{SCRAPE}, transition=~"refund_failed|dispute_opened"}}[1d]))',
                    "{{transition}}",
                ),
            ),
        ),
    ),
)

ROWS = (CALLS, STRIPE, WEBHOOKS_AND_SWEEP, CAPACITY, EVENT_FEED, FAILOVER, PAYMENTS)

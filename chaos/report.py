"""The run as a table for a terminal: what was asked, what was injected, what holds; and, for
any check that failed, the ids to look up in the replicas' logs."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from chaos.failover import FailoverOutcome
from chaos.load import CREATE, EXPIRE, REFUND, Tally
from chaos.run import Outcome
from checkout.v1 import event_pb2 as events

# Examples shown per failed check; the rest is in the logs.
_EXAMPLES = 8


def render(outcome: Outcome) -> str:
    out: list[str] = []
    s = outcome.scenario
    out.append(
        f"chaos run '{s.name}': seed {outcome.seed}, {s.replicas} replicas, "
        f"{outcome.tally.orders} orders ({outcome.order_prefix}*), "
        f"load {outcome.load_seconds:.0f} s, settled in {outcome.settled.seconds:.0f} s "
        f"({outcome.settled.how}), {outcome.wall_seconds:.0f} s in all"
    )
    out.append(f"Postgres: {outcome.postgres}")
    out.append(
        f"logs: {outcome.run_dir / 'logs'} (replica-N.log, calls.jsonl: every answer callers "
        "got, by x-request-id; ledger.tsv and stripe_sessions.tsv: both sides at the end)"
    )
    out.append("")
    out += _requests(outcome)
    out.append("")
    out += _faults(outcome)
    out.append("")
    out += _feed(outcome)
    out.append("")
    out += _checks(outcome)
    out.append("")
    out += _observations(outcome)
    details = _details(outcome)
    if details:
        out.append("")
        out += details
    return "\n".join(out)


def _table(header: tuple[str, ...], rows: Iterable[tuple[object, ...]]) -> list[str]:
    rows = [tuple(str(cell) for cell in row) for row in rows]
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]

    def line(row: tuple[object, ...]) -> str:
        first, *rest = (str(cell) for cell in row)
        cells = [first.ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(rest, widths[1:], strict=True)
        ]
        return "  ".join(cells).rstrip()

    return [line(header), line(tuple("-" * w for w in widths)), *(line(r) for r in rows)]


def _requests(outcome: Outcome) -> list[str]:
    return _calls(outcome.tally) + _refunds(outcome) + _reasons(outcome.tally)


def _calls(tally: Tally) -> list[str]:
    codes = sorted({code for _, code in tally.final} | {code for _, code in tally.answers})
    codes.sort(key=lambda code: (code != "OK", code))
    methods = (CREATE, EXPIRE, REFUND)
    rows = [
        (
            code,
            *(tally.final[(method, code)] for method in methods),
            sum(tally.answers[(method, code)] for method in methods),
        )
        for code in codes
    ]
    total = (
        "total",
        *(sum(n for (m, _), n in tally.final.items() if m == method) for method in methods),
        sum(tally.answers.values()),
    )
    lines = ["Requests by final status (after the caller's retries)"]
    lines += _table(("status", *methods, "every answer"), [*rows, total])
    lines.append(
        f"reused sessions {tally.reused}; payments {tally.payments} "
        f"(refused by the sandbox, session no longer open: {tally.payments_refused}); "
        f"creates after payment refused as paid: {tally.paid_then_refused}, "
        f"given a session (must be 0): {tally.paid_then_created}"
    )
    return lines


def _reasons(tally: Tally) -> list[str]:
    reasons = Counter({f"{code} {reason}": n for (code, reason), n in tally.reasons.items()})
    if not reasons:
        return []
    return [
        "answers that were not OK, by reason: "
        + ", ".join(f"{name} {n}" for name, n in reasons.most_common())
    ]


def _refunds(outcome: Outcome) -> list[str]:
    told, audit = outcome.tally.refunds, outcome.refunds
    made = [t for t in told if t.code == "OK"]
    return [
        f"refunds: {len(told)} asked for {outcome.tally.refunded_orders} paid orders, two to "
        f"four at once on different replicas, together up to twice the payment; made {len(made)} "
        f"({sum(t.amount for t in made)} in all), refused "
        f"{sum(1 for t in told if t.code == 'FAILED_PRECONDITION')} as exceeding what was left; "
        f"at Stripe: {audit.refunds_at_stripe} refunds of {audit.payments} payments "
        f"({audit.refunded_at_stripe} in all), {audit.unknown_then_made} of them for callers "
        "who gave up on an unknown outcome"
    ]


def _faults(outcome: Outcome) -> list[str]:
    faults = outcome.faults
    rows: list[tuple[object, ...]] = [
        (kind, faults.episodes[kind], faults.hits[kind]) for kind in faults.episodes
    ]
    rows.append(("total Stripe faults", sum(faults.episodes.values()), sum(faults.hits.values())))
    rows += [(kind, 1, "-") for kind, _ in faults.events]
    lines = ["Faults injected"]
    lines += _table(("kind", "episodes", "requests hit"), rows)
    lines += [f"  {kind}: {what}" for kind, what in faults.events]
    lines += [f"  not injected, this sandbox cannot: {kind}" for kind in faults.skipped]
    return lines


def _feed(outcome: Outcome) -> list[str]:
    feed = outcome.feed
    rows = []
    for c in feed.consumers:
        unique = {seen.event_id: seen for seen in c.seen}
        types = Counter(seen.type for seen in unique.values())
        rows.append(
            (
                c.name,
                c.streams,
                c.hung_up,
                sum(c.ended.values()),
                sum(c.refused.values()),
                len(c.seen),
                len(c.seen) - len(unique),
                len(unique),
                types[events.Event.ORDER_PAID],
                types[events.Event.PAYMENT_CAPTURED],
                types[events.Event.PAYMENT_REFUNDED],
            )
        )
    header = (
        "consumer",
        "streams",
        "hung up",
        "ended by the service",
        "refused",
        "received",
        "again",
        "unique",
        "ORDER_PAID",
        "PAYMENT_CAPTURED",
        "PAYMENT_REFUNDED",
    )
    lines = [
        "Event feed (each caller's consumers hang up at random and go on from their last cursor "
        "on another replica)"
    ]
    lines += _table(header, rows)
    ended: Counter[str] = Counter()
    for c in feed.consumers:
        ended.update(c.ended)
        ended.update({f"refused {code}": n for code, n in c.refused.items()})
    lines.append(
        f"events in the run's feeds {feed.events_in_feed}; paid orders in the ledger "
        f"{feed.paid_orders}; refunds callers were told were made {feed.refunds_told}; "
        f"streams ended by the service, by code: {_counts(ended)}"
    )
    return lines


def _checks(outcome: Outcome) -> list[str]:
    rows = [
        (name, count, "ok" if count == 0 else "FAIL") for name, count in outcome.checks().items()
    ]
    lines = ["Invariants (each must be 0)"]
    lines += _table(("check", "count", ""), rows)
    for code in ("INTERNAL", "UNKNOWN"):
        count, seen, logged = outcome.answered(code)
        if count:
            lines.append(f"  {code}: callers saw {seen}, replicas logged {logged}")
    lines.append("PASS" if outcome.passed else "FAIL")
    return lines


def _observations(outcome: Outcome) -> list[str]:
    audit = outcome.audit
    bugs = sum(len(log.bugs) for log in outcome.replica_logs.values())
    orphans = sum(len(log.orphans_expired) for log in outcome.replica_logs.values())
    deferred: Counter[str] = Counter()
    for log in outcome.replica_logs.values():
        deferred.update(log.webhooks_deferred)
    deliveries = outcome.webhooks.get("deliveries", [])
    # An error's class is enough here ("ClientConnectorError": the replica was down).
    statuses = Counter(
        str(d.get("status") or str(d.get("error") or "?").split(":")[0]) for d in deliveries
    )
    return [
        "Worth knowing (not invariants)",
        f"  ledger rows by state: {_counts(audit.ledger_states)}",
        f"  Stripe sessions by status/payment: {_counts(audit.stripe_states)}",
        f"  open at Stripe, ledger row not open: {len(audit.open_but_ledger_not_open)}; "
        f"open in the ledger, not at Stripe: {len(audit.ledger_open_but_stripe_not)}; "
        f"paid orders with another session open: {len(audit.paid_orders_with_open_session)}",
        f"  orphans the sweep expired: {orphans}; replica log lines at error level: {bugs}",
        f"  webhook attempts by answer: {_counts(statuses)}; still owed: "
        f"{outcome.webhooks.get('pending', '?')}; deferred by reason: {_counts(deferred)}",
    ]


def _details(outcome: Outcome) -> list[str]:
    audit = outcome.audit
    lines: list[str] = []
    if audit.orders_with_two_open:
        lines.append("Orders with more than one open Stripe session (order: sessions)")
        for order, ids in list(audit.orders_with_two_open.items())[:_EXAMPLES]:
            lines.append(f"  {order}: {', '.join(ids)}")
    if audit.paid_not_complete:
        lines.append("Paid Stripe sessions whose ledger row is not complete (session order row)")
        lines += [f"  {s} {o} {state}" for s, o, state in audit.paid_not_complete[:_EXAMPLES]]
    if audit.open_without_row:
        lines.append("Open Stripe sessions without a ledger row (session order)")
        lines += [f"  {s} {o}" for s, o in audit.open_without_row[:_EXAMPLES]]
    if audit.open_but_ledger_not_open:
        lines.append("Open at Stripe while the ledger row says otherwise (session order state)")
        lines += [f"  {s} {o} {st}" for s, o, st in audit.open_but_ledger_not_open[:_EXAMPLES]]
    if audit.paid_orders_with_open_session:
        lines.append("Paid orders with another session open at Stripe")
        lines += [f"  {o}" for o in audit.paid_orders_with_open_session[:_EXAMPLES]]
    feed = outcome.feed
    if feed.paid_not_once:
        lines.append("Paid orders a consumer did not see paid exactly once (consumer order times)")
        lines += [f"  {c} {o} {n}" for c, o, n in feed.paid_not_once[:_EXAMPLES]]
    if feed.missed:
        lines.append("Events of its caller a consumer never saw (consumer event)")
        lines += [f"  {c} {e}" for c, e in feed.missed[:_EXAMPLES]]
    if feed.foreign:
        lines.append("Events of another caller a consumer saw (consumer order caller)")
        lines += [f"  {c} {o} {who}" for c, o, who in feed.foreign[:_EXAMPLES]]
    if feed.out_of_order:
        lines.append("Orders whose events a consumer saw out of commit order (consumer order)")
        lines += [f"  {c} {o}" for c, o in feed.out_of_order[:_EXAMPLES]]
    if feed.refund_not_once:
        lines.append("Refunds told made, not seen refunded once (consumer refund times)")
        lines += [f"  {c} {r} {n}" for c, r, n in feed.refund_not_once[:_EXAMPLES]]
    refunds = outcome.refunds
    if refunds.over_refunded:
        lines.append("Charges whose refunds exceed their capture (charge refunded captured)")
        lines += [f"  {c} {r} {cap}" for c, r, cap in refunds.over_refunded[:_EXAMPLES]]
    if refunds.told_made_not_once:
        lines.append("Refunds told made, not at Stripe once (request refund count at Stripe)")
        lines += [f"  {q} {r} {n}" for q, r, n in refunds.told_made_not_once[:_EXAMPLES]]
    if refunds.refused_but_made:
        lines.append("Refunds at Stripe for requests told refused (request code refund)")
        lines += [f"  {q} {c} {r}" for q, c, r in refunds.refused_but_made[:_EXAMPLES]]
    if outcome.tally.oddities:
        lines.append("INTERNAL/UNKNOWN answers callers saw (order x-request-id replica: details)")
        lines += [
            f"  {o.order_id} {o.x_request_id} {o.replica} {o.method} {o.code}: {o.details}"
            for o in outcome.tally.oddities[:_EXAMPLES]
        ]
    orphans = [
        (name, session)
        for name, log in outcome.replica_logs.items()
        for session in log.orphans_expired
    ]
    if orphans:
        lines.append("Sessions the sweep expired as open at Stripe without a ledger row")
        lines += [f"  {name}: {session}" for name, session in orphans[:_EXAMPLES]]
    bug_lines = [(name, line) for name, log in outcome.replica_logs.items() for line in log.bugs]
    if bug_lines:
        lines.append("Replica log lines at error level (replica: event, request id, error)")
        for name, line in bug_lines[:_EXAMPLES]:
            error = str(line.get("exception") or line.get("error") or "").strip()
            last = error.splitlines()[-1] if error else ""
            lines.append(f"  {name}: {line.get('event')} {line.get('request_id', '-')} {last}")
    return lines


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{k} {n}" for k, n in counter.most_common()) or "none"


def render_failover(outcome: FailoverOutcome) -> str:
    """The failover run as a table: what was asked, how much the failover took away, what
    holds; and, for any check that failed, the ids to look up."""
    s, tally, when = outcome.scenario, outcome.tally, outcome.timeline
    out = [
        f"failover run '{s.name}': seed {outcome.seed}, {s.replicas} replicas, "
        f"{tally.orders} orders ({outcome.order_prefix}*), {outcome.wall_seconds:.0f} s in all",
        f"Postgres: {outcome.postgres}",
        f"logs: {outcome.run_dir / 'logs'}",
        "",
        f"at {when.held:.1f} s the standby stopped receiving; the primary committed alone for "
        f"{s.hold_seconds:g} s, was SIGKILLed at {when.killed:.1f} s; the standby was promoted "
        f"at {when.promoted:.1f} s; the ledger agreed with Stripe at {when.settled:.1f} s",
        "",
    ]
    out += _calls(tally) + _reasons(tally)
    out.append(
        f"customers paying every link they were given: {tally.stubborn_payments} accepted by "
        "the sandbox (at most one per order may be paid)"
    )
    out.append("")
    out += _failover_figures(outcome)
    out.append("")
    rows = [(name, n, "ok" if n == 0 else "FAIL") for name, n in outcome.checks().items()]
    out.append("Invariants (each must be 0)")
    out += _table(("check", "count", ""), rows)
    out.append("PASS" if outcome.passed else "FAIL")
    details = _failover_details(outcome)
    if details:
        out.append("")
        out += details
    return "\n".join(out)


def _failover_figures(outcome: FailoverOutcome) -> list[str]:
    logs = outcome.replica_logs.values()
    when = outcome.timeline
    readiness = []
    for name in outcome.replica_logs:
        dropped = outcome.readiness.dropped(name, when.killed)
        back = outcome.readiness.back(name, when.promoted)
        readiness.append(
            f"{name}: unready {'-' if dropped is None else f'{dropped - when.killed:+.1f} s'} "
            f"from the kill, ready {'never' if back is None else f'{back - when.promoted:+.1f} s'}"
            " from the promotion"
        )
    reconciling = sum(n for (_, r), n in outcome.tally.reasons.items() if r == "LEDGER_RECONCILING")
    rows: list[tuple[object, ...]] = [
        ("commits the primary made that the standby never received", outcome.lost_commits),
        ("sessions callers were told of that the promoted standby lacked", len(outcome.told_lost)),
        ("sessions adopted from Stripe", sum(len(log.adopted) for log in logs)),
        ("open sessions expired as orphans", sum(len(log.orphans_expired) for log in logs)),
        (
            "database changes noticed by the replicas",
            sum(
                n for log in logs for e, n in log.events.items() if e.startswith("database server")
            ),
        ),
        (
            "reconciliations with Stripe",
            sum(
                log.events["ledger reconciled with Stripe after the database changed"]
                for log in logs
            ),
        ),
        ("answers LEDGER_RECONCILING (retried)", reconciling),
        (
            "feed: cursors the failover lost, gone on from latest_cursor",
            sum(c.rewound for c in outcome.feed.consumers),
        ),
        (
            "feed: paid orders a consumer saw paid twice (a lost event written again)",
            outcome.feed_paid_twice(),
        ),
        (
            "feed: events in the feed, read by each of its caller's consumers",
            outcome.feed.events_in_feed,
        ),
    ]
    lines = ["What the failover took away, and how it was repaired"]
    lines += _table(("figure", "count"), rows)
    lines += [f"  {line}" for line in readiness]
    return lines


def _failover_details(outcome: FailoverOutcome) -> list[str]:
    lines: list[str] = []
    for title, items in (
        ("Replicas slow to be ready again", outcome.slow_readiness()),
        (
            "Stripe sessions neither in the ledger nor expired (session order status)",
            outcome.unknown_not_expired(),
        ),
        ("Orders with two paid sessions (order: sessions)", list(outcome.paid_twice().items())),
        (
            "Sessions callers were told of, not in the ledger nor expired (session order)",
            outcome.told_not_kept(),
        ),
        (
            "Feed: paid orders a consumer never saw paid (consumer order)",
            outcome.feed_paid_unseen(),
        ),
        (
            "Feed: orders a consumer saw paid, not paid in the ledger (consumer order)",
            outcome.feed_paid_not_paid(),
        ),
        ("Feed: events a consumer missed (consumer event)", outcome.feed.missed),
        (
            "Feed: orders whose events a consumer saw out of order (consumer order)",
            outcome.feed.out_of_order,
        ),
    ):
        if items:
            lines.append(title)
            lines += [f"  {item}" for item in items[:_EXAMPLES]]
    if outcome.audit.paid_not_complete:
        lines.append("Paid Stripe sessions whose ledger row is not complete (session order row)")
        lines += [f"  {s} {o} {st}" for s, o, st in outcome.audit.paid_not_complete[:_EXAMPLES]]
    bug_lines = [(n, line) for n, log in outcome.replica_logs.items() for line in log.bugs]
    if bug_lines:
        lines.append("Replica log lines at error level (replica: event, request id)")
        for name, line in bug_lines[:_EXAMPLES]:
            lines.append(f"  {name}: {line.get('event')} {line.get('request_id', '-')}")
    return lines

"""The bench's figures: the headline ratios against the issue's targets, the tables printed on
stdout, and `bench/results.json`."""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

from bench import workloads as w
from bench.feed import FeedResult
from bench.plan import Plan
from bench.run import Measurements
from bench.stats import paired_difference, paired_ratio, ratio
from bench.workloads import LoadResult, OpenResult

RESULTS = Path(__file__).with_name("results.json")


@dataclass(frozen=True)
class Figure:
    key: str
    label: str
    value: float
    unit: str = ""
    at_least: float | None = None
    at_most: float | None = None

    @property
    def target(self) -> str:
        if self.at_least is not None:
            return f"≥ {self.at_least:g}{self.unit}"
        if self.at_most is not None:
            return f"≤ {self.at_most:g}{self.unit}"
        return ""

    @property
    def met(self) -> bool | None:
        if self.at_least is not None:
            return self.value >= self.at_least
        if self.at_most is not None:
            return self.value <= self.at_most
        return None


def _one(m: Measurements, kind: str) -> LoadResult | None:
    found = m.results(kind)
    return found[0] if found else None


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def _cpu_ms(window: OpenResult) -> float:
    """CPU per create on the caller's side of Stripe: the service's, or the direct client's."""
    return (window.client_cpu_us if window.kind == w.DIRECT_CREATE else window.server_cpu_us) / 1000


def _vs(ours: LoadResult | None, base: LoadResult | None) -> float:
    """Calls/s of `ours` over `base`'s, round by round (stats.paired_ratio)."""
    if ours is None or base is None:
        return 0.0
    return paired_ratio(ours.round_throughputs, base.round_throughputs)


def figures(plan: Plan, m: Measurements) -> list[Figure]:
    bare, reuse, health = _one(m, w.BARE_HEALTH), _one(m, w.REUSE), _one(m, w.HEALTH)
    gets = m.results(w.GET_BY_ID) + m.results(w.GET_BY_ORDER)
    out = [
        # The slower of the two reads answers for GetSession.
        Figure(
            "get_vs_bare",
            "GetSession (slower of by id/by order) ÷ bare, calls/s",
            min((_vs(g, bare) for g in gets), default=0),
            at_least=0.8,
        ),
        Figure(
            "get_p99_vs_bare",
            "GetSession p99 (worse of the two) ÷ bare p99",
            ratio(max((g.p99_ms for g in gets), default=0), bare.p99_ms if bare else 0),
            at_most=1.5,
        ),
        Figure(
            "reuse_vs_bare",
            "CreateSession reused ÷ bare, calls/s",
            _vs(reuse, bare),
            at_least=0.6,
        ),
        Figure(
            "health_vs_bare",
            "service Health/Check ÷ bare, calls/s",
            _vs(health, bare),
        ),
        Figure(
            "get_cpu_us",
            "GetSession server CPU per call (worse of the two)",
            max((g.server_cpu_us for g in gets), default=0),
            " µs",
        ),
        Figure(
            "reuse_cpu_us",
            "CreateSession reused, server CPU per call",
            reuse.server_cpu_us if reuse else 0,
            " µs",
        ),
        Figure(
            "bare_cpu_us",
            "bare Health/Check server CPU per call",
            bare.server_cpu_us if bare else 0,
            " µs",
        ),
    ]
    for rate in plan.create_rates:
        out += _create_figures(m, rate)
    watch = m.watch
    out += [
        Figure(
            "watchers_idle_db_tps",
            f"{plan.watchers} idle watchers: Postgres transactions/s",
            watch.idle_db_tps if watch else 0,
            "/s",
            at_most=5,
        ),
        Figure(
            "watchers_rss_mb",
            f"{plan.watchers} idle watchers: RSS added",
            (watch.rss_after_mb - watch.rss_before_mb) if watch else 0,
            " MB",
            at_most=50,
        ),
        Figure(
            "watch_update_p99_ms",
            "payment → every watcher updated, p99",
            watch.update_p99_ms if watch else 0,
            " ms",
            at_most=1000,
        ),
        Figure("idle_rss_mb", "idle RSS of the service", m.idle_rss_mb, " MB", at_most=120),
        Figure(
            "start_to_serving_s",
            "spawn → serving, migrations applied (median)",
            statistics.median(m.starts_s) if m.starts_s else 0,
            " s",
            at_most=2,
        ),
        Figure(
            "watch_task_exception_messages",
            "'Task exception was never retrieved' lines in the service's stderr",
            m.stderr.after_stop,
            at_most=0,
        ),
    ]
    return out + feed_figures(plan, m.feed)


def feed_figures(plan: Plan, feed: FeedResult | None) -> list[Figure]:
    """What the issue asks of the event feed (issue 19, item 4)."""
    return [
        Figure(
            "feed_idle_db_tps",
            f"{plan.feed_streams} idle StreamEvents streams: Postgres transactions/s",
            feed.idle_db_tps if feed else 0,
            "/s",
            at_most=5,
        ),
        Figure(
            "feed_rss_mb",
            f"{plan.feed_streams} idle StreamEvents streams: RSS added",
            (feed.rss_after_mb - feed.rss_before_mb) if feed else 0,
            " MB",
            at_most=50,
        ),
        # From the webhook's effect (the event is written as the webhook is applied, after the
        # service re-read the session from Stripe) to the event on every stream.
        Figure(
            "feed_delivery_p99_ms",
            "webhook applied (its event written) → the event on every stream, p99",
            feed.written_p99_ms if feed else 0,
            " ms",
            at_most=1000,
        ),
        Figure(
            "feed_payment_p99_ms",
            "payment at the sandbox → its event on every stream, p99",
            feed.delivery_p99_ms if feed else 0,
            " ms",
        ),
    ]


def feed_table(m: Measurements) -> list[str]:
    feed = m.feed
    if feed is None:
        return []
    return [
        f"| {feed.streams} StreamEvents streams of one caller | |",
        "|---|--:|",
        f"| streams open (the service's gauge) | {feed.opened} in {feed.open_s:.1f} s |",
        f"| Postgres transactions/s, no streams / streams idle | {feed.baseline_db_tps:.1f} / "
        f"{feed.idle_db_tps:.1f} |",
        f"| server cores, streams idle | {feed.idle_server_cores:.3f} |",
        f"| server RSS before / after opening | {feed.rss_before_mb:.0f} / "
        f"{feed.rss_after_mb:.0f} MB |",
        f"| payment → its event on a stream: p50 / p99 / max | {feed.delivery_p50_ms:.0f} / "
        f"{feed.delivery_p99_ms:.0f} / {feed.delivery_max_ms:.0f} ms |",
        f"| webhook applied (its event written) → on a stream: p50 / p99 | "
        f"{feed.written_p50_ms:.0f} / {feed.written_p99_ms:.0f} ms |",
        f"| events delivered / expected / stream errors | {feed.delivered} / {feed.expected} / "
        f"{feed.stream_errors} |",
    ]


def _create_figures(m: Measurements, rate: float) -> list[Figure]:
    """At one rate: what the service adds to the latency of a create and to the CPU it costs,
    over stripe-python creating the same session straight at the sandbox; each the median over
    the rounds of the two paths measured seconds apart."""
    ours, direct = m.windows(w.CREATE, rate), m.windows(w.DIRECT_CREATE, rate)
    direct_cpu = _median([_cpu_ms(d) for d in direct])
    at = f"{rate:g}/s"
    return [
        Figure(
            f"create_added_p50_ms_{rate:g}",
            f"p50 added to a create by the service, {at}",
            paired_difference([o.p50_ms for o in ours], [d.p50_ms for d in direct]),
            " ms",
            at_most=2,
        ),
        Figure(
            f"create_added_p99_ms_{rate:g}",
            f"p99 added to a create by the service, {at}",
            paired_difference([o.p99_ms for o in ours], [d.p99_ms for d in direct]),
            " ms",
            at_most=10,
        ),
        Figure(
            f"create_cpu_ms_{rate:g}",
            f"service CPU per create, {at} (direct stripe-python's + 1 ms)",
            _median([_cpu_ms(o) for o in ours]),
            " ms",
            at_most=round(direct_cpu + 1, 2),
        ),
        Figure(
            f"direct_create_cpu_ms_{rate:g}",
            f"direct stripe-python client's CPU per create, {at}",
            direct_cpu,
            " ms",
        ),
    ]


def machine(*, steal_percent: float) -> dict[str, Any]:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "system": platform.platform(),
        "python": platform.python_version(),
        "grpcio": version("grpcio"),
        "stripe": version("stripe"),
        "asyncpg": version("asyncpg"),
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        # Time the hypervisor gave this machine's CPUs to someone else during the run, as a
        # share of all its CPU time: what makes the absolute figures swing from run to run.
        "cpu_steal_percent": round(steal_percent, 1),
    }


def _num(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


def _maybe(value: float | None, digits: int) -> str:
    return "not measured" if value is None else f"{value:.{digits}f}"


def load_table(m: Measurements) -> list[str]:
    lines = [
        "| server | call | in flight | calls/s | p50 ms | p99 ms | server CPU µs/call "
        "| server cores | server RSS MB | Postgres CPU µs/call | generator cores | errors |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for row in m.rows:
        r = row.result
        server = r.server_cores > 0 or r.server_rss_mb > 0
        lines.append(
            f"| {row.label} | {r.kind} | {r.concurrency} | {_num(r.throughput)} "
            f"| {_num(r.p50_ms, 1)} | {_num(r.p99_ms, 1)} "
            f"| {_num(r.server_cpu_us) if server else '-'} "
            f"| {_num(r.server_cores, 2) if server else '-'} "
            f"| {_num(r.server_rss_mb) if server else '-'} "
            f"| {_num(r.postgres_cpu_us) if r.postgres_cpu_us else '-'} "
            f"| {_num(r.generator_cores, 2)} | {r.errors} |"
        )
    return lines


def create_table(plan: Plan, m: Measurements) -> list[str]:
    """Each rate and path: the median over the rounds of each window's figure (errors: all)."""
    lines = [
        "| path | creates/s | calls measured | p50 ms | p99 ms | max ms | CPU ms/create "
        "| sandbox CPU µs/create | Postgres CPU µs/create | generator late, max ms | errors |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for rate in plan.create_rates:
        for kind in (w.CREATE, w.DIRECT_CREATE):
            runs = m.windows(kind, rate)
            if not runs:
                continue

            def mid(values: list[float], digits: int = 1) -> str:
                return _num(_median(values), digits)

            path = "service" if kind == w.CREATE else f"stripe-python ({plan.direct_client})"
            lines.append(
                f"| {path} | {rate:g} | {sum(r.calls for r in runs)} "
                f"| {mid([r.p50_ms for r in runs])} | {mid([r.p99_ms for r in runs])} "
                f"| {mid([r.max_ms for r in runs])} | {mid([_cpu_ms(r) for r in runs], 2)} "
                f"| {mid([r.sandbox_cpu_us for r in runs], 0)} "
                f"| {mid([r.postgres_cpu_us for r in runs], 0) if kind == w.CREATE else '-'} "
                f"| {mid([r.late_max_ms for r in runs])} | {sum(r.errors for r in runs)} |"
            )
    return lines


def watch_table(plan: Plan, m: Measurements) -> list[str]:
    watch = m.watch
    if watch is None:
        return []
    return [
        f"| {watch.watchers} WatchSession streams over {watch.sessions} sessions | |",
        "|---|--:|",
        f"| streams opened (first message) | {watch.opened} in {watch.open_s:.1f} s |",
        f"| Postgres transactions/s, no watchers ({plan.watch_baseline_s:g} s) "
        f"| {_maybe(watch.baseline_db_tps, 1)} |",
        f"| Postgres transactions/s, watchers idle ({plan.watch_idle_s:g} s) "
        f"| {watch.idle_db_tps:.1f} |",
        f"| server cores, no watchers / watchers idle "
        f"| {_maybe(watch.baseline_server_cores, 3)} / {watch.idle_server_cores:.3f} |",
        f"| server RSS before / after opening | {watch.rss_before_mb:.0f} / "
        f"{watch.rss_after_mb:.0f} MB |",
        f"| payment → watcher updated: p50 / p99 / max | {watch.update_p50_ms:.0f} / "
        f"{watch.update_p99_ms:.0f} / {watch.update_max_ms:.0f} ms |",
        f"| watchers updated / missed / stream errors | {watch.updated} / {watch.missed} / "
        f"{watch.stream_errors} |",
        f"| after the update: cancelled by the caller / ended by the server "
        f"| {watch.cancelled_by_client} / {watch.ended_by_server} |",
        f"| service stderr 'Task exception was never retrieved': before / after the watch / "
        f"after stop | {m.stderr.before_watch} / {m.stderr.after_watch} / "
        f"{m.stderr.after_stop} |",
    ]


def figure_table(figs: list[Figure]) -> list[str]:
    lines = ["| figure | key | measured | target | |", "|---|---|--:|---|---|"]
    for f in figs:
        whole = float(f.value).is_integer() or abs(f.value) >= 100
        digits = 0 if whole else 2 if abs(f.value) < 10 else 1
        verdict = {True: "met", False: "**not met**", None: ""}[f.met]
        lines.append(
            f"| {f.label} | `{f.key}` | {_num(f.value, digits)}{f.unit} | {f.target} | {verdict} |"
        )
    return lines


def write(plan: Plan, m: Measurements, wall_s: float, postgres: str, *, stolen_s: float) -> None:
    figs = figures(plan, m)
    about = machine(steal_percent=100 * stolen_s / (wall_s * (os.cpu_count() or 1)))
    command = "make bench QUICK=1" if plan.quick else "make bench"
    print(
        f"\n{command}: {about['cpus']} CPUs ({about['cpu_model']}), {about['system']}, "
        f"Python {about['python']}, grpcio {about['grpcio']}; Postgres: {postgres}; "
        f"{wall_s:.0f} s wall, {about['cpu_steal_percent']}% of the CPU time stolen by the "
        "hypervisor\n"
    )
    blocks = (load_table(m), create_table(plan, m), watch_table(plan, m), feed_table(m))
    for block in (*blocks, figure_table(figs)):
        print("\n".join(block), end="\n\n")
    print(f"start → serving (s): {', '.join(f'{s:.2f}' for s in m.starts_s)}")
    if m.stderr.excerpt:
        print(f"\nfirst 'never retrieved' in the service's stderr:\n{m.stderr.excerpt}")
    results: dict[str, Any] = {f.key: round(f.value, 3) for f in figs}
    results.update(
        command=command,
        wall_s=round(wall_s, 1),
        machine=about,
        postgres=postgres,
        plan=asdict(plan),
        targets={f.key: {"target": f.target, "met": f.met} for f in figs if f.target},
        starts_s=[round(s, 3) for s in m.starts_s],
        final_rss_mb=round(m.final_rss_mb, 1),
        workloads=[{"server": row.label, **asdict(row.result)} for row in m.rows],
        creates=[asdict(window) for window in m.creates],
        watch=asdict(m.watch) if m.watch else None,
        feed=asdict(m.feed) if m.feed else None,
        service_stderr=asdict(m.stderr),
    )
    RESULTS.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(f"\nwrote {RESULTS}")
    sys.stdout.flush()

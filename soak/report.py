"""A soak as tables for a terminal (and the README): each replica's samples, the first and
last judged and their extremes, the load it carried, and the verdict."""

from __future__ import annotations

from collections import Counter

from soak.run import Soak
from soak.verdict import COUNTS, Sample, judged

_FIGURES = ("rss_bytes", *COUNTS)
_HEADINGS = ("RSS MB", "open fds", "asyncio tasks", "pool connections", "Postgres connections")


def render(soak: Soak, *, every_seconds: float = 300.0) -> str:
    plan = soak.plan
    (start_load, end_load) = soak.load_average
    out = [
        f"soak '{plan.name}': {plan.replicas} replicas, {soak.load_seconds / 60:.1f} min of load, "
        f"a sample every {plan.sample_seconds:g} s, judged after a {plan.warmup_minutes:g}-minute "
        "warm-up",
        f"Postgres: {soak.postgres}; logs: {soak.run_dir / 'logs'}",
        f"load average (1, 5, 15 min) at the start {_avg(start_load)}, at the end {_avg(end_load)}",
        "",
        _load(soak),
        "",
        f"Each replica, every {every_seconds:g} s (and the last sample)",
        *_samples(soak, every_seconds),
        "",
        "After the warm-up: the first and last sample, the lowest and highest",
        *_summary(soak),
        "",
    ]
    if soak.findings:
        out.append("FAIL")
        out += [f"  {f.replica} {f.figure}: {f.why}" for f in soak.findings]
    else:
        out.append("PASS: no figure grew without bound")
    return "\n".join(out)


def _avg(values: tuple[float, float, float]) -> str:
    return " / ".join(f"{v:.1f}" for v in values)


def _load(soak: Soak) -> str:
    by_kind: dict[str, Counter[str]] = {}
    for (kind, outcome), n in soak.outcomes.items():
        by_kind.setdefault(kind, Counter())[outcome] += n
    parts = []
    for kind, outcomes in sorted(by_kind.items()):
        text = ", ".join(f"{o} {n}" for o, n in outcomes.most_common())
        skipped = soak.skipped.get(kind, 0)
        parts.append(f"  {kind}: {text}" + (f"; skipped {skipped}" if skipped else ""))
    minutes = max(soak.load_seconds / 60, 1e-9)
    total = sum(soak.outcomes.values())
    return "\n".join([f"Operations ({total / minutes:.0f} a minute), by outcome", *parts])


def _row(replica: str, s: Sample) -> str:
    cells = [f"{s.rss_bytes / 2**20:.1f}"] + [f"{getattr(s, f):g}" for f in COUNTS]
    return f"| {replica} | {s.at / 60:.1f} | " + " | ".join(cells) + " |"


def _samples(soak: Soak, every_seconds: float) -> list[str]:
    lines = [
        "| replica | minute | " + " | ".join(_HEADINGS) + " |",
        "|---|--:|" + "--:|" * len(_HEADINGS),
    ]
    for replica, samples in sorted(soak.samples.items()):
        shown = [
            s
            for i, s in enumerate(samples)
            if i == len(samples) - 1 or _on_the_mark(s, every_seconds)
        ]
        lines += [_row(replica, s) for s in shown]
    return lines


def _on_the_mark(s: Sample, every_seconds: float) -> bool:
    return abs(s.at - round(s.at / every_seconds) * every_seconds) < 1.0


def _summary(soak: Soak) -> list[str]:
    lines = [
        "| replica | figure | first | last | lowest | highest |",
        "|---|---|--:|--:|--:|--:|",
    ]
    for replica, samples in sorted(soak.samples.items()):
        kept = judged(samples, soak.plan)
        if not kept:
            continue
        for figure, heading in zip(_FIGURES, _HEADINGS, strict=True):
            scale = 2**20 if figure == "rss_bytes" else 1
            values = [getattr(s, figure) / scale for s in kept]
            shown = [f"{v:.1f}" if figure == "rss_bytes" else f"{v:g}" for v in values]
            lowest, highest = shown[values.index(min(values))], shown[values.index(max(values))]
            lines.append(
                f"| {replica} | {heading} | {shown[0]} | {shown[-1]} | {lowest} | {highest} |"
            )
    return lines

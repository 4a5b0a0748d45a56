"""PromQL as the alerts and the dashboard use it, read with the pinned promql-parser, against
what the service exports."""

from __future__ import annotations

from typing import Any

import promql_parser

from service.observability.metrics import Metrics

# The suffixes of the series a histogram exposes (https://prometheus.io/docs/concepts/metric_types/).
HISTOGRAM_SERIES = ("_bucket", "_sum", "_count")


def exported() -> set[str]:
    """The names of the series the service's own registry exposes on /metrics
    (service/observability/metrics.py): a counter's with `_total`, a histogram's three."""
    names: set[str] = set()
    for family in Metrics().registry.collect():
        if family.type == "counter":
            names.add(f"{family.name}_total")
        elif family.type == "histogram":
            names |= {family.name + suffix for suffix in HISTOGRAM_SERIES}
        else:
            names.add(family.name)
    return names


def selectors(expression: Any) -> list[promql_parser.VectorSelector]:
    """Every vector selector in a parsed expression, those inside range selectors included."""
    found: list[promql_parser.VectorSelector] = []

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            found.append(node)

    promql_parser.walk(expression, visit)
    return found


def metric_names(expression: Any) -> set[str]:
    names = set()
    for selector in selectors(expression):
        assert selector.name, f"select metrics by name: {selector}"
        names.add(selector.name)
    return names


def equal_matchers(selector: promql_parser.VectorSelector) -> dict[str, str]:
    return {
        m.name: m.value for m in selector.matchers.matchers if m.op == promql_parser.MatchOp.Equal
    }

"""The Grafana dashboard: the committed JSON is exactly what dashboard/ generates, the monitoring
component hands it to Grafana's sidecar, every query parses and reads only metrics the service
exports, and every alert opens the panel that explains it, from its dashboard_url annotation and
from its section of the runbook."""

from __future__ import annotations

import json
import re
from typing import Any

import promql_parser
import pytest

from dashboard.__main__ import TARGET
from dashboard.grafana import PATH, render
from dashboard.panels import ROWS, Chart
from tests.deploy import promql
from tests.deploy.manifests import ROOT, Manifests

# What Grafana puts in place of its variables before it sends a query
# (https://grafana.com/docs/grafana/latest/dashboards/variables/add-template-variables/#global-variables).
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$namespace": "checkout"}
RUNBOOK = ROOT / "docs" / "runbook.md"


@pytest.fixture(scope="module")
def board() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(TARGET.read_text())
    return loaded


@pytest.fixture
def alerts(overlays: dict[str, Manifests]) -> list[dict[str, Any]]:
    (rule,) = overlays["prod"].all("PrometheusRule")
    return [item for group in rule["spec"]["groups"] for item in group["rules"]]


def charts() -> dict[int, Chart]:
    return {chart.id: chart for row in ROWS for chart in row.charts}


def graphs(board: dict[str, Any]) -> list[dict[str, Any]]:
    return [panel for panel in board["panels"] if panel["type"] != "row"]


def as_grafana_sends_it(query: str) -> Any:
    for variable, value in GRAFANA_VARIABLES.items():
        query = query.replace(variable, value)
    assert "$" not in query, f"a variable Grafana does not define: {query}"
    return promql_parser.parse(query)


def test_the_committed_dashboard_is_what_the_generator_writes() -> None:
    assert TARGET.read_text() == render(ROWS), "run `make dashboard` and commit the result"


def test_grafanas_sidecar_finds_the_dashboard(overlays: dict[str, Manifests]) -> None:
    labelled = [
        config
        for config in overlays["prod"].all("ConfigMap")
        if config["metadata"].get("labels", {}).get("grafana_dashboard") == "1"
    ]
    assert [config["metadata"]["name"] for config in labelled] == ["checkout-dashboard"]
    assert labelled[0]["data"] == {"checkout.json": TARGET.read_text()}


def test_every_query_parses_and_reads_only_exported_metrics(board: dict[str, Any]) -> None:
    exported = promql.exported()
    queries = [target["expr"] for panel in graphs(board) for target in panel["targets"]]
    assert len(queries) >= len(graphs(board)) > 10
    for query in queries:
        expression = as_grafana_sends_it(query)
        names = promql.metric_names(expression)
        assert names and names <= exported, (query, names - exported)
        for selector in promql.selectors(expression):
            # The service's scrape, in the namespace picked at the top of the dashboard.
            matchers = promql.equal_matchers(selector)
            assert matchers.get("job") == "checkout-http", query
            assert matchers.get("namespace") == GRAFANA_VARIABLES["$namespace"], query
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            match = re.fullmatch(r"label_values\((.+), (\w+)\)", variable["query"])
            assert match, variable["query"]
            assert promql.metric_names(promql_parser.parse(match[1])) <= exported


def test_every_panel_reads_the_picked_prometheus_and_has_its_own_id(board: dict[str, Any]) -> None:
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    assert {panel["id"] for panel in graphs(board)} == set(charts())
    for panel in graphs(board):
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    (datasource,) = [v for v in board["templating"]["list"] if v["name"] == "datasource"]
    assert (datasource["type"], datasource["query"]) == ("datasource", "prometheus")


def test_every_alert_opens_the_panel_that_explains_it(
    alerts: list[dict[str, Any]], board: dict[str, Any]
) -> None:
    explaining = {chart.alert: chart for chart in charts().values() if chart.alert}
    assert set(explaining) == {rule["alert"] for rule in alerts}
    panels = {panel["id"]: panel for panel in graphs(board)}
    for rule in alerts:
        chart = explaining[rule["alert"]]
        assert rule["annotations"]["dashboard_url"] == (
            f"{PATH}?viewPanel={chart.id}&var-namespace={{{{ $labels.namespace }}}}"
        )
        panel = panels[chart.id]
        assert panel["title"] == chart.title
        # It shows what the alert evaluates: the same metrics, and the threshold it crosses.
        expression = promql_parser.parse(rule["expr"])
        shown = set().union(
            *(promql.metric_names(as_grafana_sends_it(t["expr"])) for t in panel["targets"])
        )
        assert promql.metric_names(expression) <= shown, rule["alert"]
        if isinstance(expression, promql_parser.BinaryExpr) and str(expression.op) == ">":
            assert isinstance(expression.rhs, promql_parser.NumberLiteral), rule["alert"]
            steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
            assert chart.threshold == expression.rhs.val, rule["alert"]
            assert steps[-1]["value"] == expression.rhs.val, rule["alert"]


def test_the_runbook_links_each_alert_to_its_panel(alerts: list[dict[str, Any]]) -> None:
    sections = re.split(r"^### ", RUNBOOK.read_text(), flags=re.MULTILINE)
    by_heading = {section.split("\n", 1)[0].strip(): section for section in sections[1:]}
    explaining = {chart.alert: chart for chart in charts().values() if chart.alert}
    for rule in alerts:
        chart = explaining[rule["alert"]]
        section = by_heading[rule["alert"]]
        assert f"{PATH}?viewPanel={chart.id}" in section, rule["alert"]
        assert f"**{chart.title}**" in section, rule["alert"]

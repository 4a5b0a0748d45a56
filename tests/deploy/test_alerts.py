"""The custom resources that `kubernetes-validate` has no schema for (PrometheusRule,
ServiceMonitor, cert-manager's Certificate), checked here instead: only fields their CRDs
define, every alert's PromQL parses and names only metrics the service exports, every alert's
runbook_url leads to a section of docs/runbook.md, and every alert has the `promtool test
rules` cases that `make deploy-check` runs."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import promql_parser
import pytest
import yaml

from tests.deploy import promql
from tests.deploy.manifests import ROOT, Manifests, labels_match

RUNBOOK = ROOT / "docs" / "runbook.md"
RULE_TESTS = ROOT / "deploy" / "k8s" / "components" / "monitoring" / "prometheus-rules.test.yaml"

# The fields of each custom resource that the CRDs define and these manifests may use
# (cert-manager.io/v1 Certificate, monitoring.coreos.com/v1 PrometheusRule and ServiceMonitor).
RULE_FIELDS = {"alert", "expr", "for", "keep_firing_for", "labels", "annotations", "record"}
GROUP_FIELDS = {"name", "interval", "rules", "limit", "partial_response_strategy"}
ENDPOINT_FIELDS = {
    "port",
    "path",
    "interval",
    "scrapeTimeout",
    "scheme",
    "tlsConfig",
    "relabelings",
}
SERVICEMONITOR_FIELDS = {"selector", "endpoints", "namespaceSelector", "jobLabel"}
CERTIFICATE_FIELDS = {
    "secretName",
    "secretTemplate",
    "duration",
    "renewBefore",
    "privateKey",
    "usages",
    "dnsNames",
    "uris",
    "ipAddresses",
    "commonName",
    "issuerRef",
    "subject",
}
REQUIRED_ALERTS = {
    "CheckoutHighErrorRatio",
    "CheckoutStripeFailureRatio",
    "CheckoutWebhookLagHigh",
    "CheckoutSweepRepairing",
    "CheckoutPendingRowsStale",
}


@pytest.fixture
def prod(overlays: dict[str, Manifests]) -> Manifests:
    return overlays["prod"]


def rules(manifests: Manifests) -> list[dict[str, Any]]:
    (rule,) = manifests.all("PrometheusRule")
    assert set(rule["spec"]) == {"groups"}
    found = []
    for group in rule["spec"]["groups"]:
        assert set(group) <= GROUP_FIELDS
        for item in group["rules"]:
            assert set(item) <= RULE_FIELDS, item.get("alert")
            found.append(item)
    return found


def duration(text: str) -> timedelta:
    """A Prometheus duration: `90s`, `10m`, `1h30m`, `500ms`."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    parts = re.findall(r"(\d+)(ms|s|m|h|d|w)", text)
    assert parts and "".join(n + u for n, u in parts) == text, text
    return timedelta(seconds=sum(int(n) * units[u] for n, u in parts))


def anchors(markdown: str) -> set[str]:
    """GitHub's anchors for the headings of a Markdown file."""
    found = set()
    for line in markdown.splitlines():
        if match := re.match(r"^#{1,6} +(.+?) *$", line):
            heading = re.sub(r"[`*]", "", match[1]).lower()
            found.add(re.sub(r"[^\w\- ]", "", heading).replace(" ", "-"))
    return found


def test_the_alerts_an_operator_needs_are_there(prod: Manifests) -> None:
    assert {rule["alert"] for rule in rules(prod)} >= REQUIRED_ALERTS


def test_every_alert_parses_and_names_only_exported_metrics(prod: Manifests) -> None:
    exported = promql.exported()
    for rule in rules(prod):
        names = promql.metric_names(promql_parser.parse(rule["expr"]))
        assert names, rule["alert"]
        assert names <= exported, (rule["alert"], names - exported)
        # Scraped by the ServiceMonitor, whose job label is the Service's name.
        assert 'job="checkout-http"' in rule["expr"].replace(" ", ""), rule["alert"]
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]


def test_every_alert_links_to_its_runbook_section(prod: Manifests) -> None:
    sections = anchors(RUNBOOK.read_text())
    for rule in rules(prod):
        annotations = rule["annotations"]
        assert {"summary", "description", "runbook_url"} <= set(annotations), rule["alert"]
        path, _, anchor = annotations["runbook_url"].partition("#")
        assert path == "docs/runbook.md", rule["alert"]
        assert anchor == rule["alert"].lower(), rule["alert"]
        assert anchor in sections, f"docs/runbook.md has no section for {rule['alert']}"


def test_the_servicemonitor_scrapes_the_http_service(prod: Manifests) -> None:
    (monitor,) = prod.all("ServiceMonitor")
    spec = monitor["spec"]
    assert set(spec) <= SERVICEMONITOR_FIELDS
    (endpoint,) = spec["endpoints"]
    assert set(endpoint) <= ENDPOINT_FIELDS
    assert endpoint["path"] == "/metrics"
    scraped = [
        service["metadata"]["name"]
        for service in prod.all("Service")
        if labels_match(spec["selector"]["matchLabels"], service["metadata"]["labels"])
        and endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    ]
    assert scraped == ["checkout-http"]


def test_the_certificate_uses_only_cert_managers_fields(prod: Manifests) -> None:
    (certificate,) = prod.all("Certificate")
    assert certificate["apiVersion"] == "cert-manager.io/v1"
    spec = certificate["spec"]
    assert set(spec) <= CERTIFICATE_FIELDS
    assert set(spec["issuerRef"]) <= {"name", "kind", "group"}
    assert set(spec["privateKey"]) <= {"algorithm", "size", "rotationPolicy", "encoding"}
    assert "server auth" in spec["usages"]
    for duration in ("duration", "renewBefore"):
        assert re.fullmatch(r"\d+h", spec[duration]), duration
    assert int(spec["renewBefore"][:-1]) < int(spec["duration"][:-1])


def test_dev_needs_no_custom_resource(overlays: dict[str, Manifests]) -> None:
    kinds = {r["kind"] for r in overlays["dev"].resources}
    assert not kinds & {"PrometheusRule", "ServiceMonitor", "Certificate"}


def test_every_link_into_the_docs_resolves() -> None:
    """`docs/x.md#section` in deploy/'s comments, `[…](x.md#section)` and `[…](#section)` in
    the deployment docs: each names a heading that exists."""
    docs = ROOT / "docs"
    sections = {path.name: anchors(path.read_text()) for path in docs.glob("*.md")}
    links: list[tuple[str, str, str]] = []
    for path in (ROOT / "deploy").rglob("*"):
        if path.is_file() and path.suffix in ("", ".yaml", ".md"):
            for name, anchor in re.findall(r"docs/(\w+\.md)#([\w-]+)", path.read_text()):
                links.append((str(path.relative_to(ROOT)), name, anchor))
    for path in (docs / "deploy.md", docs / "runbook.md"):
        for target, anchor in re.findall(r"\]\((\w+\.md)?#([\w-]+)\)", path.read_text()):
            links.append((path.name, target or path.name, anchor))
    assert len(links) > 10
    for source, name, anchor in links:
        assert anchor in sections.get(name, set()), f"{source}: {name}#{anchor} leads nowhere"


def test_every_alert_has_promtool_tests_that_fire_it_and_keep_it_quiet(prod: Manifests) -> None:
    """prometheus-rules.test.yaml, which `make deploy-check` runs with `promtool test rules`:
    for every alert, a check that it fires once its `for:` has passed and one before that
    where it does not yet, and series in a namespace "under" for which it never fires."""
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    for rule in rules(prod):
        name, hold = rule["alert"], duration(rule["for"])
        cases = [t for t in tests if any(c["alertname"] == name for c in t["alert_rule_test"])]
        assert len(cases) == 1, f"{name}: {len(cases)} promtool tests in {RULE_TESTS.name}, not 1"
        (case,) = cases
        checks = [
            (duration(c["eval_time"]), c["exp_alerts"])
            for c in case["alert_rule_test"]
            if c["alertname"] == name
        ]
        firing = [at for at, alerts in checks if alerts]
        assert firing, f"{name}: no promtool test makes it fire"
        assert min(firing) >= hold, f"{name}: fires in its test before its for: ({rule['for']})"
        assert any(at < min(firing) and not alerts for at, alerts in checks), (
            f"{name}: not checked quiet before it fires"
        )
        assert any(
            'namespace="under"' in s["series"].replace(" ", "") for s in case["input_series"]
        )
        fired_in = {a["exp_labels"]["namespace"] for _, alerts in checks for a in alerts}
        assert "under" not in fired_in, name
        assert max(at for at, _ in checks) >= hold, f"{name}: under is not held past its for:"

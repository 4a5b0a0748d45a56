"""The rendered overlays against what the service and the runbook expect of them: the drain
timing against the ConfigMap, the ports against the listen addresses, the security settings,
the migration Job, the Secrets' keys, and every name, port, label and namespace that a
`kubectl` command in docs/ or the README uses (so that a renamed Service breaks this test,
not an operator's 3 a.m.)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.manifests import (
    ROOT,
    Manifests,
    Resource,
    container,
    labels_match,
    pod_labels,
    pod_spec,
    port_of,
    selector_matches,
)

SERVER = {"app.kubernetes.io/name": "checkout", "app.kubernetes.io/component": "server"}
MIGRATE = {"app.kubernetes.io/name": "checkout", "app.kubernetes.io/component": "migrate"}
FIRST_APPLY = "app.kubernetes.io/component!=server"
DOCS = [ROOT / "docs" / "runbook.md", ROOT / "docs" / "deploy.md", ROOT / "README.md"]


@pytest.fixture(params=["dev", "prod"])
def overlay(request: pytest.FixtureRequest, overlays: dict[str, Manifests]) -> Manifests:
    return overlays[request.param]


def test_the_drain_fits_in_the_termination_grace_period(overlay: Manifests) -> None:
    config = overlay.config
    drain = float(config["DRAIN_DELAY_SECONDS"])
    grace = float(config["SHUTDOWN_GRACE_SECONDS"])
    pod = pod_spec(overlay.get("Deployment", "checkout"))
    pre_stop = container(overlay.get("Deployment", "checkout"), "checkout")["lifecycle"]["preStop"]
    # Endpoints are being withdrawn while preStop sleeps; then SIGTERM: NOT_SERVING, the drain
    # delay, in-flight RPCs' grace. Kubelet kills at terminationGracePeriodSeconds after preStop
    # began.
    assert pre_stop["sleep"]["seconds"] == drain
    assert pod["terminationGracePeriodSeconds"] > pre_stop["sleep"]["seconds"] + drain + grace


def test_ports_and_probes_match_the_listen_addresses(overlay: Manifests) -> None:
    config = overlay.config
    server = container(overlay.get("Deployment", "checkout"), "checkout")
    ports = {p["name"]: p["containerPort"] for p in server["ports"]}
    assert ports == {
        "grpc": port_of(config["GRPC_ADDR"]),
        "health": port_of(config["HEALTH_ADDR"]),
        "http": port_of(config["HTTP_ADDR"]),
    }
    assert config["GRPC_ADDR"].startswith("0.0.0.0:")
    # kubelet's gRPC probe speaks no TLS: readiness asks the plaintext health-only listener.
    assert server["readinessProbe"]["grpc"]["port"] == ports["health"]
    for probe in ("livenessProbe", "startupProbe"):
        assert server[probe]["httpGet"] == {"path": "/livez", "port": "http"}


def test_services_select_the_server_pods_only(overlay: Manifests) -> None:
    expected = {
        "checkout-grpc": ("grpc", 50051, "grpc"),
        "checkout-http": ("http", 8080, "http"),
    }
    for name, (port_name, number, protocol) in expected.items():
        service = overlay.get("Service", name)
        selector = service["spec"]["selector"]
        assert [w["kind"] for w in overlay.pods_matching(selector)] == ["Deployment"], name
        (port,) = service["spec"]["ports"]
        assert (port["name"], port["port"], port["targetPort"]) == (port_name, number, port_name)
        assert port["appProtocol"] == protocol
    budget = overlay.get("PodDisruptionBudget", "checkout")["spec"]["selector"]["matchLabels"]
    assert [w["kind"] for w in overlay.pods_matching(budget)] == ["Deployment"]


def test_every_pod_runs_locked_down_with_requests_and_limits(overlay: Manifests) -> None:
    assert overlay.get("ServiceAccount", "checkout")["automountServiceAccountToken"] is False
    for workload in overlay.workloads():
        pod = pod_spec(workload)
        name = workload["metadata"]["name"]
        assert pod["automountServiceAccountToken"] is False, name
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for box in pod["containers"]:
            security = box["securityContext"]
            assert security["allowPrivilegeEscalation"] is False, name
            assert security["readOnlyRootFilesystem"] is True, name
            assert security["capabilities"] == {"drop": ["ALL"]}, name
            assert set(box["resources"]) == {"requests", "limits"}, name
            assert {"cpu", "memory"} <= set(box["resources"]["limits"]), name
    server = pod_spec(overlay.get("Deployment", "checkout"))
    assert {c["topologyKey"] for c in server["topologySpreadConstraints"]} == {
        "topology.kubernetes.io/zone",
        "kubernetes.io/hostname",
    }


def test_the_pods_run_the_image_as_it_is_built(overlay: Manifests) -> None:
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    user = re.search(r"^USER (\d+):(\d+)$", dockerfile, re.MULTILINE)
    exposed = re.search(r"^EXPOSE (.+)$", dockerfile, re.MULTILINE)
    assert user and exposed
    assert '\nENTRYPOINT ["python", "-m", "service"]\n' in dockerfile
    server = overlay.get("Deployment", "checkout")
    context = pod_spec(server)["securityContext"]
    assert (context["runAsUser"], context["runAsGroup"]) == (int(user[1]), int(user[2]))
    ports = {p["containerPort"] for p in container(server, "checkout")["ports"]}
    assert ports == {int(port) for port in exposed[1].split()}
    assert "command" not in container(server, "checkout")  # the image's entry point serves


def test_the_job_migrates_and_prod_pods_do_not(overlays: dict[str, Manifests]) -> None:
    for manifests in overlays.values():
        job = manifests.get("Job", "checkout-migrate")
        assert labels_match(MIGRATE, pod_labels(job))
        assert container(job, "migrate")["command"] == ["python", "-m", "service", "migrate"]
    assert overlays["prod"].config["MIGRATE_ON_START"] == "false"
    assert overlays["dev"].config["MIGRATE_ON_START"] == "true"


def test_the_first_apply_of_a_release_holds_what_the_job_needs(
    overlays: dict[str, Manifests],
) -> None:
    """docs/deploy.md applies `-l 'app.kubernetes.io/component!=server'` first, waits for
    the Job, then applies the rest: that first part must hold everything the Job refers to
    and nothing of the server."""
    for manifests in overlays.values():
        first = {
            (r["kind"], r["metadata"]["name"])
            for r in manifests.resources
            if selector_matches(FIRST_APPLY, r["metadata"].get("labels", {}))
        }
        job = manifests.get("Job", "checkout-migrate")
        pod = pod_spec(job)
        needs = {("Job", "checkout-migrate"), ("NetworkPolicy", "checkout-migrate")}
        needs.add(("ServiceAccount", pod["serviceAccountName"]))
        needs |= {
            ("ConfigMap", e["configMapRef"]["name"]) for e in container(job, "migrate")["envFrom"]
        }
        assert needs <= first
        server = {
            ("Deployment", "checkout"),
            ("Service", "checkout-grpc"),
            ("Service", "checkout-http"),
        }
        assert not first & server


def test_replicas_dev_one_prod_autoscaled(overlays: dict[str, Manifests]) -> None:
    dev, prod = overlays["dev"], overlays["prod"]
    assert dev.get("Deployment", "checkout")["spec"]["replicas"] == 1
    assert dev.all("HorizontalPodAutoscaler") == []
    assert dev.get("StatefulSet", "checkout-postgres")
    assert "replicas" not in prod.get("Deployment", "checkout")["spec"]  # the HPA's to set
    hpa = prod.get("HorizontalPodAutoscaler", "checkout")["spec"]
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "checkout",
    }
    assert 2 < hpa["minReplicas"] < hpa["maxReplicas"]
    assert prod.all("StatefulSet") == []


def test_the_secret_example_has_every_key_the_pods_read(overlay: Manifests) -> None:
    example = {
        s["metadata"]["name"]: s
        for s in yaml.safe_load_all((ROOT / "deploy/k8s/secret.example.yaml").read_text())
    }
    generated = {s["metadata"]["name"] for s in overlay.all("Secret")}
    certificates = {c["spec"]["secretName"] for c in overlay.all("Certificate")}
    for workload in overlay.workloads():
        for box in pod_spec(workload)["containers"]:
            for env in box.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref and ref["name"] not in generated:
                    assert ref["key"] in example[ref["name"]]["stringData"], env["name"]
        for volume in pod_spec(workload).get("volumes", []):
            if "secret" in volume:
                name = volume["secret"]["secretName"]
                assert name in example or name in certificates or name in generated, name
    callers_file = Path(overlay.config["CALLERS_FILE"])
    mounts = {m["name"]: m["mountPath"] for m in container_of_server(overlay)["volumeMounts"]}
    assert Path(mounts["callers"]) == callers_file.parent
    assert callers_file.name in example["checkout-callers"]["stringData"]


def test_prod_tls_comes_from_the_certificate(overlays: dict[str, Manifests]) -> None:
    prod = overlays["prod"]
    config = prod.config
    (certificate,) = prod.all("Certificate")
    volumes = {v["name"]: v for v in pod_spec(prod.get("Deployment", "checkout"))["volumes"]}
    assert volumes["tls"]["secret"]["secretName"] == certificate["spec"]["secretName"]
    mounts = {m["name"]: m for m in container_of_server(prod)["volumeMounts"]}
    assert "subPath" not in mounts["tls"]  # subPath mounts never see a renewal
    directory = Path(mounts["tls"]["mountPath"])
    assert Path(config["TLS_CERT_FILE"]) == directory / "tls.crt"
    assert Path(config["TLS_KEY_FILE"]) == directory / "tls.key"
    assert Path(config["TLS_CLIENT_CA_FILE"]) == directory / "ca.crt"
    assert f"checkout-grpc.{prod.namespace}.svc" in certificate["spec"]["dnsNames"]
    assert not any(k.startswith("TLS_") for k in overlays["dev"].config)


def test_network_policies(overlay: Manifests) -> None:
    policy = overlay.get("NetworkPolicy", "checkout-server")["spec"]
    assert labels_match(policy["podSelector"]["matchLabels"], SERVER)
    by_port = {rule["ports"][0]["port"]: rule["from"] for rule in policy["ingress"]}
    callers = {"matchLabels": {"checkout.example/caller": "true"}}
    assert by_port["grpc"] == [{"namespaceSelector": callers}]
    ingress = {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}
    assert {"namespaceSelector": ingress} in by_port["http"]
    ports = {p["name"] for p in container_of_server(overlay)["ports"]}
    assert set(by_port) <= ports
    egress = {p["port"] for rule in policy["egress"] for p in rule["ports"]}
    assert egress == {53, 5432, 443}
    migrate = overlay.get("NetworkPolicy", "checkout-migrate")["spec"]
    assert labels_match(migrate["podSelector"]["matchLabels"], MIGRATE)
    assert "ingress" not in migrate and "Ingress" in migrate["policyTypes"]
    assert {p["port"] for rule in migrate["egress"] for p in rule["ports"]} == {53, 5432}


def container_of_server(manifests: Manifests) -> dict[str, Any]:
    return container(manifests.get("Deployment", "checkout"), "checkout")


# --- the names the runbook's commands use -------------------------------------------------

_KINDS = {
    "deploy": "Deployment",
    "deployment": "Deployment",
    "svc": "Service",
    "service": "Service",
    "job": "Job",
    "statefulset": "StatefulSet",
    "sts": "StatefulSet",
    "hpa": "HorizontalPodAutoscaler",
    "pdb": "PodDisruptionBudget",
    "networkpolicy": "NetworkPolicy",
    "certificate": "Certificate",
    "prometheusrule": "PrometheusRule",
}
_REF = re.compile(r"^(?P<kind>[a-z]+)/(?P<name>[a-z0-9-]+)$")


def kubectl_commands() -> list[tuple[str, list[str]]]:
    """Every `kubectl …` line inside a fenced code block of the docs, as argument lists."""
    commands = []
    for path in DOCS:
        fenced = False
        for line in path.read_text().splitlines():
            if line.strip().startswith("```"):
                fenced = not fenced
                continue
            text = line.strip()
            if fenced and text.startswith("kubectl "):
                words = shlex.split(text.split(" | ")[0].split(" > ")[0], comments=True)
                commands.append((f"{path.name}: {text}", words))
    return commands


def test_the_docs_use_kubectl() -> None:
    assert len(kubectl_commands()) >= 10
    assert FIRST_APPLY in (ROOT / "docs" / "deploy.md").read_text()


@pytest.mark.parametrize(
    ("where", "words"), kubectl_commands(), ids=[c[0][:90] for c in kubectl_commands()]
)
def test_every_name_in_the_docs_commands_exists(
    where: str, words: list[str], overlays: dict[str, Manifests]
) -> None:
    options = _options(words)
    for flag in ("-k", "--kustomize", "-f", "--filename"):
        if (path := options.get(flag)) and path.startswith("deploy/"):
            assert (ROOT / path).exists(), f"{where}: no {path}"
    namespace = options.get("-n") or options.get("--namespace")
    kustomization = options.get("-k") or options.get("--kustomize") or ""
    if namespace is not None:
        by_namespace = {m.namespace: m for m in overlays.values()}
        assert namespace in by_namespace, f"{where}: no overlay deploys to namespace {namespace}"
        manifests = by_namespace[namespace]
    elif kustomization.startswith("deploy/k8s/overlays/"):
        manifests = overlays[Path(kustomization).name]
    else:
        return  # nothing to resolve names against
    positional = [w for w in words[1:] if not w.startswith("-") and w not in options.values()]
    for word in positional:
        if match := _REF.match(word):
            kind = _KINDS.get(match["kind"])
            if kind is not None:
                assert manifests.find(kind, match["name"]), f"{where}: no {word}"
    if "port-forward" in positional:
        _check_port_forward(where, positional, manifests)
    if selector := options.get("-l") or options.get("--selector"):
        assert [
            r
            for r in manifests.resources
            if selector_matches(selector, r["metadata"].get("labels", {}))
        ], f"{where}: nothing labelled {selector}"
    if container_name := options.get("-c") or options.get("--container"):
        names = {c["name"] for w in manifests.workloads() for c in pod_spec(w)["containers"]}
        assert container_name in names, f"{where}: no container {container_name}"
    for secret in _secret_names(positional):
        example = (ROOT / "deploy/k8s/secret.example.yaml").read_text()
        known = {c["spec"]["secretName"] for c in manifests.all("Certificate")}
        assert f"name: {secret}\n" in example or secret in known, f"{where}: no Secret {secret}"


_VALUED = {"-n", "--namespace", "-l", "--selector", "-c", "--container", "-k", "--kustomize"}
_VALUED |= {"-f", "--filename"}


def _options(words: list[str]) -> dict[str, str]:
    options = {}
    for index, word in enumerate(words):
        if word.startswith("-") and "=" in word:
            key, value = word.split("=", 1)
            options[key] = value
        elif word in _VALUED:
            options[word] = words[index + 1]
    return options


def _check_port_forward(where: str, positional: list[str], manifests: Manifests) -> None:
    index = positional.index("port-forward")
    target, mappings = positional[index + 1], positional[index + 2 :]
    match = _REF.match(target)
    assert match, f"{where}: port-forward to {target}"
    resource: Resource = manifests.get(_KINDS[match["kind"]], match["name"])
    if resource["kind"] == "Service":
        offered = {p["port"] for p in resource["spec"]["ports"]}
    else:
        offered = {p["containerPort"] for c in pod_spec(resource)["containers"] for p in c["ports"]}
    for mapping in mappings:
        remote = int(mapping.rpartition(":")[2])
        assert remote in offered, f"{where}: {target} has no port {remote}"


def _secret_names(positional: list[str]) -> list[str]:
    names = []
    for index, word in enumerate(positional[:-1]):
        if any(mark in positional[index + 1] for mark in "$<"):
            continue  # a placeholder: `oncall-$USER-tls`
        if word == "secret":
            following = positional[index + 1]
            if following in ("generic", "tls"):
                following = positional[index + 2]
            names.append(following)
        elif word.startswith("secret/"):
            names.append(word.split("/", 1)[1])
    return names

"""Look-ups in rendered manifests, shared by the deploy tests."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]

Resource = dict[str, Any]


def load_documents(text: str) -> list[Resource]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


@dataclass(frozen=True)
class Manifests:
    resources: list[Resource]

    def all(self, kind: str) -> list[Resource]:
        return [r for r in self.resources if r["kind"] == kind]

    def find(self, kind: str, name: str) -> Resource | None:
        for resource in self.all(kind):
            if resource["metadata"]["name"] == name:
                return resource
        return None

    def get(self, kind: str, name: str) -> Resource:
        found = self.find(kind, name)
        assert found is not None, f"no {kind} {name}"
        return found

    @property
    def namespace(self) -> str:
        (namespace,) = {r["metadata"].get("namespace") for r in self.resources}
        assert isinstance(namespace, str)
        return namespace

    @property
    def config(self) -> dict[str, str]:
        """The data of the service's ConfigMap (its name carries kustomize's hash)."""
        (found,) = [
            r for r in self.all("ConfigMap") if r["metadata"]["name"].startswith("checkout-config")
        ]
        data: dict[str, str] = found["data"]
        return data

    def workloads(self) -> Iterator[Resource]:
        for resource in self.resources:
            if resource["kind"] in ("Deployment", "StatefulSet", "Job"):
                yield resource

    def pods_matching(self, selector: Mapping[str, str]) -> list[Resource]:
        """The workloads whose pod template carries every label of `selector`."""
        return [w for w in self.workloads() if labels_match(selector, pod_labels(w))]


def pod_labels(workload: Resource) -> dict[str, str]:
    labels: dict[str, str] = workload["spec"]["template"]["metadata"]["labels"]
    return labels


def pod_spec(workload: Resource) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def container(workload: Resource, name: str) -> dict[str, Any]:
    (found,) = [c for c in pod_spec(workload)["containers"] if c["name"] == name]
    assert isinstance(found, dict)
    return found


def labels_match(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def port_of(address: str) -> int:
    return int(address.rpartition(":")[2])


def selector_matches(selector: str, labels: Mapping[str, str]) -> bool:
    """kubectl's `-l` syntax: `k=v`, `k==v`, `k!=v`, `k in (a, b)`, `k notin (…)`, `k`, `!k`."""
    for term in (t.strip() for t in re.split(r",(?![^()]*\))", selector)):
        if match := re.fullmatch(r"([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)", term):
            values = {v.strip() for v in match[3].split(",")}
            ok = (labels.get(match[1]) in values) == (match[2] == "in")
        elif "!=" in term:
            key, value = term.split("!=", 1)
            ok = labels.get(key.strip()) != value.strip()
        elif "=" in term:
            key, _, value = term.partition("=")
            ok = labels.get(key.strip()) == value.lstrip("=").strip()
        elif term.startswith("!"):
            ok = term[1:] not in labels
        else:
            ok = term in labels
        if not ok:
            return False
    return True

"""A real Prometheus (Debian's `prometheus` package; deploy/install-prometheus installs it) that
scrapes running services with the project's alerting rules loaded, made fast for a test.

The rules are the PrometheusRule's groups (deploy/k8s/components/monitoring/
prometheus-rules.yaml) with every duration divided by SPEED_UP: each `for:` and each range
selector's window, so `for: 10m` becomes 5 s and `rate(…[5m])` 2.5 s. Expressions, thresholds,
labels and annotations are otherwise the production ones. Prometheus scrapes the services and
evaluates the rules every INTERVAL, which leaves ten samples in the shortest window: a scrape
missed on a busy machine does not empty it.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.support import ROOT

RULES = ROOT / "deploy" / "k8s" / "components" / "monitoring" / "prometheus-rules.yaml"
BINARY = shutil.which("prometheus")
MISSING = (
    "prometheus is not installed: `make test` installs Debian's prometheus package "
    "(deploy/install-prometheus) when it runs as root with apt-get"
)
SPEED_UP = 120
INTERVAL = "250ms"
# The job the ServiceMonitor gives the scrape in Kubernetes, which every rule selects.
JOB = "checkout-http"
_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_DURATION = r"(?:\d+(?:ms|s|m|h|d|w))+"


def shortened(duration: str) -> str:
    """A Prometheus duration (`10m`, `1h30m`) divided by SPEED_UP, in milliseconds."""
    parts = re.findall(r"(\d+)(ms|s|m|h|d|w)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    return f"{sum(int(n) * _UNITS_MS[u] for n, u in parts) // SPEED_UP}ms"


def fast_rules() -> dict[str, Any]:
    """The PrometheusRule's groups with every `for:` and range window shortened."""
    (rule,) = [d for d in yaml.safe_load_all(RULES.read_text()) if d]
    groups = rule["spec"]["groups"]
    for group in groups:
        for item in group["rules"]:
            if "for" in item:
                item["for"] = shortened(item["for"])
            item["expr"] = re.sub(
                rf"\[({_DURATION})\]", lambda m: f"[{shortened(m[1])}]", item["expr"]
            )
            # Nothing left unshortened (a subquery's `[5m:1m]`, say).
            ranges = re.findall(r"\[([^\]]*)\]", item["expr"])
            assert all(re.fullmatch(r"\d+ms", r) for r in ranges), item["expr"]
    return {"groups": groups}


@dataclass
class Alert:
    name: str
    state: str  # pending, firing
    labels: dict[str, str]
    annotations: dict[str, str]


@dataclass
class Prometheus:
    url: str
    http: httpx.AsyncClient

    async def alerts(self) -> list[Alert]:
        """What /api/v1/alerts lists: the alerts pending or firing now."""
        answer = (await self.http.get(f"{self.url}/api/v1/alerts")).raise_for_status().json()
        return [
            Alert(a["labels"]["alertname"], a["state"], a["labels"], a["annotations"])
            for a in answer["data"]["alerts"]
        ]

    async def alert(self, name: str, namespace: str) -> Alert | None:
        found = [
            a
            for a in await self.alerts()
            if a.name == name and a.labels.get("namespace") == namespace
        ]
        return found[0] if found else None

    async def state(self, name: str, namespace: str) -> str | None:
        """`pending`, `firing`, or None: inactive (never active, or resolved)."""
        alert = await self.alert(name, namespace)
        return alert.state if alert else None

    async def query(self, expression: str) -> list[dict[str, Any]]:
        """An instant query's result: each series' labels and [time, value]."""
        answer = await self.http.get(f"{self.url}/api/v1/query", params={"query": expression})
        result: list[dict[str, Any]] = answer.raise_for_status().json()["data"]["result"]
        return result

    async def scraping(self, namespace: str) -> None:
        """Wait until a scrape of `namespace`'s target has succeeded. (Prometheus hands new
        targets to its scrapers at most every 5 s, so the first one may take that long.)"""
        await self.wait_until(f'up{{job="{JOB}", namespace="{namespace}"}} == 1')

    async def wait_until(self, expression: str, within_seconds: float = 60) -> None:
        """Wait until the instant query `expression` has a result."""

        async def answered() -> bool:
            return bool(await self.query(expression))

        await _poll(answered, within_seconds, expression)

    async def wait_for(
        self, name: str, namespace: str, state: str | None, within_seconds: float = 60
    ) -> Alert | None:
        """Wait until the alert `name` of `namespace` is in `state` (None: inactive) and
        return it."""

        async def reached() -> bool:
            return await self.state(name, namespace) == state

        await _poll(reached, within_seconds, f"{name} in {namespace} {state or 'inactive'}")
        return await self.alert(name, namespace)


async def _poll(check: Callable[[], Awaitable[bool]], within_seconds: float, what: str) -> None:
    try:
        async with asyncio.timeout(within_seconds):
            while True:
                if await check():
                    return
                await asyncio.sleep(0.25)
    except TimeoutError:
        raise AssertionError(f"gave up after {within_seconds} s waiting for {what}") from None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def write_config(folder: Path, targets: dict[str, int]) -> Path:
    """prometheus.yml and the fast rules in `folder`: scrape `/metrics` on each HTTP port of
    `targets`, labelled with the namespace it is keyed by, as Kubernetes would (the rules
    group by namespace)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "rules.yaml").write_text(yaml.safe_dump(fast_rules()))
    static = [
        {"targets": [f"127.0.0.1:{port}"], "labels": {"namespace": namespace}}
        for namespace, port in targets.items()
    ]
    config = {
        "global": {
            "scrape_interval": INTERVAL,
            "scrape_timeout": INTERVAL,
            "evaluation_interval": INTERVAL,
        },
        "rule_files": ["rules.yaml"],
        "scrape_configs": [{"job_name": JOB, "static_configs": static}],
    }
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
    return folder / "prometheus.yml"


@asynccontextmanager
async def prometheus(folder: Path, targets: dict[str, int]) -> AsyncIterator[Prometheus]:
    """A Prometheus of `write_config`'s, ready to answer, stopped afterwards."""
    assert BINARY is not None, MISSING
    config = write_config(folder, targets)
    address = f"127.0.0.1:{free_port()}"
    with open(folder / "prometheus.log", "wb") as log:  # noqa: ASYNC230 (a local file)
        process = await asyncio.create_subprocess_exec(
            BINARY,
            f"--config.file={config}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address={address}",
            "--log.level=warn",
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    try:
        async with httpx.AsyncClient(timeout=5) as http:
            running = Prometheus(f"http://{address}", http)
            if not await _ready(running, process):
                raise AssertionError(
                    f"Prometheus did not start: {_tail(folder / 'prometheus.log')}"
                )
            yield running
    finally:
        if process.returncode is None:
            process.terminate()
        await process.wait()


async def _ready(running: Prometheus, process: asyncio.subprocess.Process) -> bool:
    for _ in range(200):
        if process.returncode is not None:
            return False
        try:
            if (await running.http.get(f"{running.url}/-/ready")).status_code == 200:
                return True
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    return False


def _tail(log: Path) -> str:
    return log.read_text()[-2000:]

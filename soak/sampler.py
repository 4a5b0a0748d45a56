"""What a soak samples of each replica: its own figures from its /metrics (prometheus-client's
`process_*` and the service's `checkout_asyncio_tasks`, `checkout_db_pool_connections`), and
its connections as Postgres sees them (pg_stat_activity, by the `application_name` each
replica connects with)."""

from __future__ import annotations

import asyncpg
import httpx
from prometheus_client.parser import text_string_to_metric_families

from soak.verdict import Sample

_SERIES = {
    "process_resident_memory_bytes": "rss_bytes",
    "process_open_fds": "open_fds",
    "checkout_asyncio_tasks": "asyncio_tasks",
    "checkout_db_pool_connections": "pool_connections",
}


async def replica_figures(http: httpx.AsyncClient, http_port: int) -> dict[str, float]:
    page = await http.get(f"http://127.0.0.1:{http_port}/metrics")
    page.raise_for_status()
    found = {}
    for family in text_string_to_metric_families(page.text):
        for sample in family.samples:
            if sample.name in _SERIES:
                found[_SERIES[sample.name]] = float(sample.value)
    missing = set(_SERIES.values()) - found.keys()
    if missing:
        raise RuntimeError(f"the replica's /metrics lacks {sorted(missing)}")
    return found


async def postgres_connections(admin_dsn: str, application_prefix: str) -> dict[str, int]:
    """Connections by application name, of the names that begin with `application_prefix`."""
    conn = await asyncpg.connect(admin_dsn, timeout=10)
    try:
        rows = await conn.fetch(
            """SELECT application_name, count(*) AS n FROM pg_stat_activity
               WHERE starts_with(application_name, $1) GROUP BY application_name""",
            application_prefix,
        )
    finally:
        await conn.close()
    return {row["application_name"]: int(row["n"]) for row in rows}


async def sample(
    http: httpx.AsyncClient,
    http_ports: dict[str, int],
    admin_dsn: str,
    application_name: str,
    at: float,
) -> dict[str, Sample]:
    """One sample of every replica, `at` seconds into the load."""
    connections = await postgres_connections(admin_dsn, f"{application_name}-")
    taken = {}
    for replica, port in http_ports.items():
        figures = await replica_figures(http, port)
        taken[replica] = Sample(
            at=at,
            postgres_connections=connections.get(f"{application_name}-{replica}", 0),
            **figures,
        )
    return taken

"""The run's Postgres: a pgserver of its own in the run's folder, which it can stop and start
again on the same data; or an exported DATABASE_URL, which it cannot restart, so there the
outage is every replica's connections terminated at once (as a failover does to them).

The replicas connect with an `application_name` of the run's own, so that terminating their
connections on a shared server touches nobody else's.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg


class Postgres:
    def __init__(self, base_dsn: str, application_name: str, server: Any, data: Path | None):
        self._base_dsn = base_dsn
        self._server = server
        self._data = data
        self.application_name = application_name
        self.dsn = _with_application_name(base_dsn, application_name)
        """For the replicas: their connections carry the run's name."""
        self.admin_dsn = base_dsn
        """For the run itself (the audit, terminating the replicas' connections)."""

    @property
    def restartable(self) -> bool:
        return self._server is not None

    def describe(self) -> str:
        if self._data is not None:
            return f"pgserver of the run's own under {self._data}"
        return "DATABASE_URL (exported; outages are terminated connections)"

    @classmethod
    def open(cls, folder: Path, application_name: str) -> Postgres:
        """Blocking (pgserver forks `pg_ctl`): call it before gRPC channels exist."""
        if url := os.environ.get("DATABASE_URL"):
            return cls(url, application_name, None, None)
        data = folder / "pg"
        server = _start(data)
        return cls(str(server.get_uri()), application_name, server, data)

    async def outage(self, down_seconds: float) -> str:
        """Take the database away from the replicas for a while; what was done, for the
        report. pgserver's start and stop block, so they run in a thread while the load and
        the other faults go on."""
        if self._server is None:
            await self._terminate_replica_connections()
            return "replicas' connections terminated (DATABASE_URL cannot be restarted)"
        await asyncio.to_thread(self._stop)
        await asyncio.sleep(down_seconds)
        await asyncio.to_thread(self._start_again)
        return f"stopped, {down_seconds:g} s down, started on the same data"

    def close(self) -> None:
        """Stop the run's own server and delete its data (the run dumps what it needs)."""
        if self._server is not None:
            self._server.cleanup()
            self._server = None
        if self._data is not None:
            shutil.rmtree(self._data, ignore_errors=True)

    def _stop(self) -> None:
        assert self._server is not None and self._data is not None
        self._server.cleanup()  # `pg_ctl stop`, fast mode: every session is terminated

    def _start_again(self) -> None:
        assert self._data is not None
        self._server = _start(self._data)
        # Same folder, same socket: the replicas reconnect to the address they know.
        assert str(self._server.get_uri()) == self._base_dsn

    async def _terminate_replica_connections(self) -> None:
        conn = await asyncpg.connect(self.admin_dsn, timeout=10)
        try:
            await conn.execute(
                """SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                   WHERE application_name = $1 AND pid <> pg_backend_pid()""",
                self.application_name,
            )
        finally:
            await conn.close()


def _start(data: Path) -> Any:
    with warnings.catch_warnings():
        # platformdirs warns that XDG_RUNTIME_DIR is unset and falls back to /tmp: harmless.
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
        from pgserver.postgres_server import get_server

        # "stop", not "delete": a restart must find the data where it was.
        return get_server(data, cleanup_mode="stop")


def _with_application_name(dsn: str, name: str) -> str:
    """asyncpg passes unknown URL parameters to the server as settings
    (https://magicstack.github.io/asyncpg/current/api/index.html#connection)."""
    parts = urlsplit(dsn)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "application_name"]
    query.append(("application_name", name))
    return urlunsplit(parts._replace(query=urlencode(query)))

"""The embedded Postgres for laptops and tests: pgserver's bundled PostgreSQL, data kept under
a folder so that sessions survive restarts. Used only when DATABASE_URL is unset."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def start_embedded(data_dir: Path) -> tuple[str, Any]:
    """Start (or join) the server over `data_dir/postgres`; return its DSN and a handle that
    keeps it alive. Blocking: call it before the event loop and before gRPC starts, since
    pgserver forks and gRPC does not like forks from other threads (tooling.md)."""
    from pgserver.postgres_server import get_server

    pgdata = (data_dir / "postgres").resolve()
    pgdata.mkdir(parents=True, exist_ok=True)
    # "stop": the server stops when the last process using it exits, and the data stays.
    server = get_server(pgdata, cleanup_mode="stop")
    return str(server.get_uri()), server

"""The embedded Postgres for laptops and tests: pgserver's bundled PostgreSQL, data kept under
a folder so that sessions survive restarts. `make run` uses it when DATABASE_URL is unset;
the service itself only ever connects to a DATABASE_URL."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any


def start_embedded(data_dir: Path) -> tuple[str, Any]:
    """Start (or join) the server over `data_dir/postgres`; return its DSN and a handle that
    keeps it alive. Blocking: call it before the event loop and before gRPC starts, since
    pgserver forks and gRPC does not like forks while other threads call into it."""
    pgdata = (data_dir / "postgres").resolve()
    pgdata.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # platformdirs warns that XDG_RUNTIME_DIR is unset and falls back to /tmp: harmless,
        # and only noise on a new engineer's console.
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
        from pgserver.postgres_server import get_server

        # "stop": the server stops when the last process using it exits, and the data stays.
        server = get_server(pgdata, cleanup_mode="stop")
    return str(server.get_uri()), server

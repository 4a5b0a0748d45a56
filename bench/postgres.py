"""The Postgres the service under test uses: an exported DATABASE_URL, else an embedded
pgserver in the bench's temporary directory (started before any other thread: it forks)."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Postgres:
    dsn: str
    pid: int
    """The postmaster, when it runs on this machine (0 otherwise): the bench reports the CPU
    of it and its backends."""
    describe: str


@contextmanager
def postgres(data_dir: Path) -> Iterator[Postgres]:
    if url := os.environ.get("DATABASE_URL"):
        yield Postgres(url, 0, "DATABASE_URL (exported)")
        return
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
        from pgserver.postgres_server import get_server

        server = get_server(data_dir / "postgres", cleanup_mode="delete")
    try:
        yield Postgres(str(server.get_uri()), server.get_pid() or 0, "embedded pgserver (PG 16)")
    finally:
        server.cleanup()

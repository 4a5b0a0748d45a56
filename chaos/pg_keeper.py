"""`python -m chaos.pg_keeper DATA_DIR`: the run's own pgserver Postgres, in a process of its own
that never imports gRPC, stopped and started on command.

pgserver runs `pg_ctl` as another user when run as root, so with a real fork() rather than
vfork(); in a process whose gRPC channels are busy, gRPC's fork handlers then run in the child
(and crashed it once under pytest). Here nothing but Postgres is forked.

Protocol, one line each way: on start it prints `ready DSN`; then `stop` answers `stopped`,
`start` answers `ready DSN`; end of input stops the server and exits.
"""

from __future__ import annotations

import signal
import sys
import warnings
from pathlib import Path
from typing import Any


def _start(data: Path) -> Any:
    with warnings.catch_warnings():
        # platformdirs warns that XDG_RUNTIME_DIR is unset and falls back to /tmp: harmless.
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
        from pgserver.postgres_server import get_server

        # "stop", not "delete": a restart must find the data where it was.
        return get_server(data, cleanup_mode="stop")


def main(data: Path) -> None:
    # Killed with the run (SIGTERM to its process group), it still stops the server, which runs
    # in a session of its own and would outlive it.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    server: Any = _start(data)
    print(f"ready {server.get_uri()}", flush=True)
    try:
        for line in sys.stdin:
            command = line.strip()
            if command == "stop" and server is not None:
                server.cleanup()  # `pg_ctl stop`, fast mode: every session is terminated
                server = None
                print("stopped", flush=True)
            elif command == "start" and server is None:
                server = _start(data)
                print(f"ready {server.get_uri()}", flush=True)
            else:
                print(f"error: cannot {command!r} now", flush=True)
    finally:
        if server is not None:
            server.cleanup()


if __name__ == "__main__":
    main(Path(sys.argv[1]))

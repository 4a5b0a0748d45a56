"""`python -m service.sandbox [--host H] [--port P] [--state-file PATH]`.

Defaults come from `SANDBOX_HOST`, `SANDBOX_PORT` and `SANDBOX_STATE_FILE`, else
127.0.0.1:12111 (stripe-mock's port, which stripe-python's own tests use) and no state file.
`--port 0` binds a free port; the line `sandbox listening on http://HOST:PORT` says which.
"""

import argparse
import asyncio
import os
import signal
from collections.abc import Mapping, Sequence
from pathlib import Path

from .server import serve


def parse_args(argv: Sequence[str] | None, environ: Mapping[str, str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m service.sandbox", description="Run the local Stripe sandbox."
    )
    parser.add_argument("--host", default=environ.get("SANDBOX_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(environ.get("SANDBOX_PORT", "12111")))
    state_file = environ.get("SANDBOX_STATE_FILE")
    parser.add_argument(
        "--state-file",
        type=Path,
        default=Path(state_file) if state_file else None,
        help="JSON file the sandbox loads at start and rewrites after every change",
    )
    return parser.parse_args(argv)


async def _run(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await serve(args.host, args.port, args.state_file, stop)


def main(argv: Sequence[str] | None = None) -> None:
    asyncio.run(_run(parse_args(argv, os.environ)))


if __name__ == "__main__":
    main()

"""`python -m sandbox [--host H] [--port P] [--state-file PATH] [--webhook-… N]`.

Defaults come from `SANDBOX_HOST`, `SANDBOX_PORT` and `SANDBOX_STATE_FILE`, else
127.0.0.1:12111 (stripe-mock's port, which stripe-python's own tests use) and no state file.
`--port 0` binds a free port; the line `sandbox listening on http://HOST:PORT` says which.

Webhook retries follow Stripe's live-mode schedule on the sandbox clock (`webhook_schedule.py`):
`--webhook-retry-delay` seconds before the second attempt, doubling after each failure, for
three days scaled by the same factor (`SANDBOX_WEBHOOK_RETRY_DELAY`, default 60, which is the
unscaled schedule), at most `--webhook-attempts` attempts (`SANDBOX_WEBHOOK_ATTEMPTS`, default:
as many as the three days allow), `--webhook-timeout` seconds per attempt
(`SANDBOX_WEBHOOK_TIMEOUT`, default 10).
"""

import argparse
import asyncio
import os
import signal
from collections.abc import Mapping, Sequence
from pathlib import Path

from .server import serve
from .webhook_schedule import RetryPolicy


def parse_args(argv: Sequence[str] | None, environ: Mapping[str, str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox", description="Run the local Stripe sandbox."
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
    default = RetryPolicy()
    parser.add_argument(
        "--webhook-retry-delay",
        type=float,
        default=float(environ.get("SANDBOX_WEBHOOK_RETRY_DELAY", default.first_delay)),
        help="seconds before a failed webhook delivery is retried; doubles after each failure, "
        "and scales Stripe's three days of retries (default 60: unscaled)",
    )
    attempts = environ.get("SANDBOX_WEBHOOK_ATTEMPTS")
    parser.add_argument(
        "--webhook-attempts",
        type=int,
        default=int(attempts) if attempts else default.attempts,
        help="at most this many attempts per webhook delivery (default: three days' worth)",
    )
    parser.add_argument(
        "--webhook-timeout",
        type=float,
        default=float(environ.get("SANDBOX_WEBHOOK_TIMEOUT", default.timeout)),
        help="seconds one webhook delivery attempt may take",
    )
    parser.add_argument(
        "--demo-catalog",
        action="store_true",
        default=environ.get("SANDBOX_DEMO_CATALOG", "") in ("1", "true"),
        help="seed the demo catalog with fixed ids (see sandbox/demo_catalog.py)",
    )
    args = parser.parse_args(argv)
    attempts_given = args.webhook_attempts is not None
    if (
        args.webhook_retry_delay <= 0
        or (attempts_given and args.webhook_attempts < 1)
        or args.webhook_timeout <= 0
    ):
        parser.error("webhook retries need a delay > 0, attempts >= 1 and a timeout > 0")
    return args


async def _run(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    policy = RetryPolicy(args.webhook_retry_delay, args.webhook_attempts, args.webhook_timeout)
    await serve(args.host, args.port, args.state_file, policy, stop, demo_catalog=args.demo_catalog)


def main(argv: Sequence[str] | None = None) -> None:
    asyncio.run(_run(parse_args(argv, os.environ)))


if __name__ == "__main__":
    main()

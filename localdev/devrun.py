"""`make run`: the whole API on a laptop with nothing configured.

Starts an embedded Postgres under `.data/postgres` when no DATABASE_URL is exported (pgserver,
from the `local` extra; production never installs it), and the Stripe sandbox when neither
STRIPE_API_KEY nor STRIPE_API_BASE is exported (state kept under `.data/sandbox.json`, so
restarts keep every session; an already running sandbox on its port is reused, so a second
`make run` with other ports is a second replica). Registers the service's webhook URL with the
sandbox (unless STRIPE_WEBHOOK_SECRET is exported), then runs `python -m service` in the
foreground with the caller's environment plus those addresses. Ctrl-C or SIGTERM stops all.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from types import FrameType
from typing import Any

import stripe

from localdev.embedded import start_embedded
from sandbox.launcher import SandboxProcess
from sandbox.launcher import start_sandbox as launch_sandbox
from service.config import DEFAULT_HTTP_ADDR, SANDBOX_API_BASE, SANDBOX_API_KEY
from service.domain.sync import HANDLED_EVENTS
from service.edge.http import WEBHOOK_PATH


def start_sandbox(port: int, *, state_file: Path) -> SandboxProcess:
    """`python -m sandbox` on the port the service expects, with the demo catalog the README's
    examples name and its state kept in `state_file`."""
    return launch_sandbox("--port", str(port), "--demo-catalog", "--state-file", str(state_file))


def sandbox_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_sandbox/stats", timeout=1):
            return True
    except (urllib.error.URLError, OSError):
        return False


def register_webhook(api_base: str, http_addr: str, state: Path) -> str:
    """The signing secret of a sandbox webhook endpoint for this service's URL: the one saved
    in `state` if the sandbox still has it (Stripe shows a secret only when it creates the
    endpoint), else a new endpoint's."""
    client = stripe.StripeClient(SANDBOX_API_KEY, base_addresses={"api": api_base})
    url = f"http://{http_addr}{WEBHOOK_PATH}"
    saved = json.loads(state.read_text()) if state.exists() else {}
    if saved.get("url") == url and saved.get("api_base") == api_base:
        try:
            client.v1.webhook_endpoints.retrieve(saved["id"])
            return str(saved["secret"])
        except stripe.InvalidRequestError:
            pass  # the sandbox's state was reset: register again
    # stripe-python types event names as literals; ours are plain strings of the same values.
    events: list[Any] = sorted(HANDLED_EVENTS)
    endpoint = client.v1.webhook_endpoints.create({"url": url, "enabled_events": events})
    secret = str(endpoint.secret)
    state.write_text(
        json.dumps({"url": url, "api_base": api_base, "id": endpoint.id, "secret": secret})
    )
    return secret


def main() -> None:
    env = dict(os.environ)
    sandbox = None
    embedded = None
    data_dir = Path(env.get("DATA_DIR") or ".data")
    data_dir.mkdir(parents=True, exist_ok=True)
    if not env.get("DATABASE_URL"):
        # Before any thread starts: pgserver forks.
        env["DATABASE_URL"], embedded = start_embedded(data_dir)
        print(f"make run: embedded Postgres under {data_dir / 'postgres'}", flush=True)
    if not env.get("STRIPE_API_KEY") and not env.get("STRIPE_API_BASE"):
        if sandbox_answers(SANDBOX_API_BASE):
            print(f"using the Stripe sandbox already running at {SANDBOX_API_BASE}", flush=True)
        else:
            port = int(SANDBOX_API_BASE.rsplit(":", 1)[1])
            sandbox = start_sandbox(port, state_file=data_dir / "sandbox.json")
        env["STRIPE_API_BASE"] = SANDBOX_API_BASE
        if not env.get("STRIPE_WEBHOOK_SECRET"):
            http_addr = env.get("HTTP_ADDR") or DEFAULT_HTTP_ADDR
            env["STRIPE_WEBHOOK_SECRET"] = register_webhook(
                SANDBOX_API_BASE,
                http_addr,
                data_dir / f"webhook-{http_addr.replace(':', '_')}.json",
            )
    service = subprocess.Popen([sys.executable, "-m", "service"], env=env)

    def forward(signum: int, _: FrameType | None) -> None:
        service.send_signal(signum)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    try:
        code = service.wait()
    finally:
        if sandbox is not None:
            sandbox.stop()
        del embedded  # the embedded server stops when its last user lets go
    raise SystemExit(code)


if __name__ == "__main__":
    main()

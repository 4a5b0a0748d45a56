"""`python -m sandbox`: the listening line, its environment defaults, clean stops, and a
state file that keeps every session and idempotency record across a restart."""

import asyncio
import json
import signal
from pathlib import Path

import pytest
import stripe

from sandbox.__main__ import parse_args
from tests.support import run_sandbox, stop_sandbox

from .support import session_params, stripe_client


def test_webhook_retries_come_from_options_then_environment_then_defaults() -> None:
    defaults = parse_args([], {})
    # Stripe's live schedule, unscaled: a minute, doubling, for three days (webhook_schedule.py).
    assert (defaults.webhook_retry_delay, defaults.webhook_attempts, defaults.webhook_timeout) == (
        60.0,
        None,
        10.0,
    )
    environ = {
        "SANDBOX_WEBHOOK_RETRY_DELAY": "0.1",
        "SANDBOX_WEBHOOK_ATTEMPTS": "3",
        "SANDBOX_WEBHOOK_TIMEOUT": "2",
    }
    from_env = parse_args([], environ)
    assert (from_env.webhook_retry_delay, from_env.webhook_attempts, from_env.webhook_timeout) == (
        0.1,
        3,
        2.0,
    )
    assert parse_args(["--webhook-attempts", "5"], environ).webhook_attempts == 5
    with pytest.raises(SystemExit):
        parse_args(["--webhook-attempts", "0"], {})
    with pytest.raises(SystemExit):
        parse_args(["--webhook-retry-delay", "0"], {})


async def test_port_zero_binds_a_free_port_and_says_which() -> None:
    running = await run_sandbox("--port", "0")
    try:
        assert running.url.startswith("http://127.0.0.1:")
        assert int(running.url.rsplit(":", 1)[1]) > 0
    finally:
        assert await stop_sandbox(running) == 0


async def test_environment_gives_the_defaults() -> None:
    running = await run_sandbox(env={"SANDBOX_HOST": "127.0.0.1", "SANDBOX_PORT": "0"})
    try:
        assert running.url.startswith("http://127.0.0.1:")
    finally:
        await stop_sandbox(running)


async def test_sigint_stops_it_cleanly() -> None:
    running = await run_sandbox("--port", "0")
    running.process.send_signal(signal.SIGINT)
    # Wait for SIGINT alone to end it: a SIGTERM from `stop_sandbox` racing with the exit could
    # land after asyncio has put the default handler back, and kill it.
    assert await asyncio.to_thread(running.process.wait, 15) == 0
    assert await stop_sandbox(running) == 0


async def test_state_file_keeps_sessions_and_idempotency_across_a_restart(
    tmp_path: Path, http_client: stripe.HTTPXClient
) -> None:
    state = tmp_path / "sandbox.json"
    first = await run_sandbox("--port", "0", "--state-file", str(state))
    try:
        client = stripe_client(first.url, http_client)
        created = await client.v1.checkout.sessions.create_async(
            session_params(metadata={"order_id": "42"}), {"idempotency_key": "order-42-1"}
        )
        expired = await client.v1.checkout.sessions.create_async(session_params())
        await client.v1.checkout.sessions.expire_async(expired.id)
    finally:
        await stop_sandbox(first)
    assert created.id in json.loads(state.read_text())["collections"]["checkout.session"]

    second = await run_sandbox("--port", "0", "--state-file", str(state))
    try:
        client = stripe_client(second.url, http_client)
        again = await client.v1.checkout.sessions.retrieve_async(
            created.id, {"expand": ["line_items"]}
        )
        assert again.metadata is not None and again.metadata["order_id"] == "42"
        assert again.line_items is not None and again.line_items.data[0].quantity == 1
        assert (await client.v1.checkout.sessions.retrieve_async(expired.id)).status == "expired"
        replayed = await client.v1.checkout.sessions.create_async(
            session_params(metadata={"order_id": "42"}), {"idempotency_key": "order-42-1"}
        )
        assert replayed.id == created.id
        listed = await client.v1.checkout.sessions.list_async()
        assert [s.id for s in listed.data] == [expired.id, created.id]
    finally:
        await stop_sandbox(second)


async def test_concurrent_writes_all_reach_the_state_file(
    tmp_path: Path, http_client: stripe.HTTPXClient
) -> None:
    state = tmp_path / "sandbox.json"
    running = await run_sandbox("--port", "0", "--state-file", str(state))
    try:
        client = stripe_client(running.url, http_client)
        created = await asyncio.gather(
            *(client.v1.checkout.sessions.create_async(session_params()) for _ in range(30))
        )
    finally:
        await stop_sandbox(running)
    stored = json.loads(state.read_text())["collections"]["checkout.session"]
    assert {session.id for session in created} <= set(stored)

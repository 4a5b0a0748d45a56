"""The sandbox clock: sessions expire at `expires_at`, idempotency keys are forgotten after 24 h."""

import time

import httpx
import stripe

from sandbox.launcher import SandboxProcess

from .support import line_item, session_params


async def advance(raw: httpx.AsyncClient, seconds: int) -> int:
    response = await raw.post("/_sandbox/clock/advance", json={"seconds": seconds})
    response.raise_for_status()
    now: int = response.json()["now"]
    return now


async def test_sessions_expire_when_their_time_comes(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    short = await client.v1.checkout.sessions.create_async(
        session_params(expires_at=int(time.time()) + 31 * 60)
    )
    default = await client.v1.checkout.sessions.create_async(session_params())
    now = await advance(raw, 32 * 60)
    assert now >= short.expires_at
    expired = await client.v1.checkout.sessions.retrieve_async(short.id)
    assert (expired.status, expired.url) == ("expired", None)
    still_open = await client.v1.checkout.sessions.list_async({"status": "open"})
    assert [s.id for s in still_open.data] == [default.id]
    later = await client.v1.checkout.sessions.create_async(session_params())
    assert later.created >= now


async def test_idempotency_keys_are_forgotten_after_a_day(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    first = await client.v1.checkout.sessions.create_async(
        session_params(), {"idempotency_key": "day-old"}
    )
    await advance(raw, 25 * 60 * 60)
    second = await client.v1.checkout.sessions.create_async(
        session_params(line_item(quantity=3)), {"idempotency_key": "day-old"}
    )
    assert second.id != first.id


async def test_the_clock_only_moves_forward(
    sandbox: SandboxProcess, raw: httpx.AsyncClient
) -> None:
    response = await raw.post("/_sandbox/clock/advance", json={"seconds": -5})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "seconds"
    clock = (await raw.get("/_sandbox/clock")).json()
    assert clock["offset"] == 0

"""The README's recipe for fulfilling every paid order exactly once, against a real server: the
consumer (tests/e2e/recipe_consumer.py, running the README's own code in a process of its own,
with its own tables in the test's Postgres) is killed with SIGKILL after it fulfilled an order
and before it committed, twice, while payments go on; nothing is fulfilled twice or missed."""

from __future__ import annotations

import asyncio
import os
import re
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest_asyncio
from checkout_client import CheckoutClient

from checkout.v1 import checkout_service_pb2 as api
from checkout.v1 import event_pb2 as events
from service.app import Application, start
from service.config import Settings
from tests.e2e.credentials import Authority, callers_document, new_token
from tests.e2e.helpers import Sandbox, cart_request, new_order_id
from tests.support import ROOT, eventually


@dataclass
class Shop:
    """The service with TLS and callers, as the order service reaches it, and the order
    service's own database."""

    target: str
    token: str
    ca: Path
    database_url: str


@pytest_asyncio.fixture
async def shop(
    environ: dict[str, str], tmp_path: Path, pg_dsn: str, app: Application
) -> AsyncIterator[Shop]:
    # The suite's server (`app`) receives the sandbox's webhooks; this one hears of them
    # through Postgres.
    del app
    authority = Authority("recipe CA")
    cert, key = authority.server().write(tmp_path, "server")
    (tmp_path / "ca.crt").write_bytes(authority.pem)
    token = new_token("recipe")
    callers = tmp_path / "callers.json"
    name = f"recipe-{uuid.uuid4().hex[:8]}"
    callers.write_text(callers_document([{"name": name, "token": token, "role": "caller"}]))
    settings = Settings.from_environ(
        {
            **environ,
            "CALLERS_FILE": str(callers),
            "TLS_CERT_FILE": str(cert),
            "TLS_KEY_FILE": str(key),
        }
    )
    replica = await start(settings)
    async with order_service_database(pg_dsn) as database_url:
        yield Shop(f"localhost:{replica.grpc_port}", token, tmp_path / "ca.crt", database_url)
    await replica.stop()


@asynccontextmanager
async def order_service_database(pg_dsn: str) -> AsyncIterator[str]:
    """A database of the order service's own, with the README's tables and one for what it
    fulfilled (without a unique key: an order fulfilled twice shows twice)."""
    name = f"orders_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(pg_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    dsn = urlunsplit(urlsplit(pg_dsn)._replace(path=f"/{name}"))
    try:
        readme = (ROOT / "README.md").read_text()
        section = readme.split("**Fulfil every paid order exactly once.**", 1)[1]
        found = re.search(r"```sql\n(.*?)```", section, re.DOTALL)
        assert found is not None
        conn = await asyncpg.connect(dsn)
        await conn.execute(found.group(1))
        await conn.execute("CREATE TABLE fulfilments (order_id text NOT NULL)")
        await conn.close()
        yield dsn
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


@asynccontextmanager
async def consumer(shop: Shop, *, stop_at: int = 0) -> AsyncIterator[asyncio.subprocess.Process]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.e2e.recipe_consumer",
        env={
            **os.environ,
            "PYTHONPATH": f"{ROOT}:{ROOT / 'clients' / 'python'}",
            "RECIPE_TARGET": shop.target,
            "RECIPE_TOKEN": shop.token,
            "RECIPE_CA": str(shop.ca),
            "RECIPE_DATABASE_URL": shop.database_url,
            "RECIPE_STOP_AT": str(stop_at),
        },
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


async def said(process: asyncio.subprocess.Process, words: str) -> str:
    assert process.stdout is not None
    async with asyncio.timeout(30):
        while line := (await process.stdout.readline()).decode():
            if words in line:
                return line
    raise AssertionError(f"the consumer exited without saying {words!r}")


async def test_the_recipe_fulfils_every_paid_order_once_whenever_the_consumer_is_killed(
    shop: Shop, sandbox: Sandbox
) -> None:
    orders = [new_order_id() for _ in range(6)]
    async with CheckoutClient.connect(shop.target, token=shop.token, ca=shop.ca.read_bytes()) as c:
        sessions = [(await c.stub.CreateSession(cart_request(o))).session.id for o in orders]
        await c.stub.ExpireSession(api.ExpireSessionRequest(order_id=orders[5]))
    for session_id in sessions[:3]:
        sandbox.pay(session_id, payment_status="paid")
    db = await asyncpg.connect(shop.database_url)
    try:
        async with consumer(shop, stop_at=2) as first:
            killed_at = await said(first, "not committed")
            first.kill()
        for session_id in sessions[3:5]:
            sandbox.pay(session_id, payment_status="paid")
        async with consumer(shop, stop_at=3) as second:
            killed_again_at = await said(second, "not committed")
            second.kill()
        async with consumer(shop) as last:
            await said(last, "following")

            async def all_handled() -> bool:
                done = await db.fetchval("SELECT count(DISTINCT order_id) FROM fulfilments")
                # The five payments, each one's capture once Stripe's webhook about its
                # PaymentIntent is applied, and the expiry.
                handled = await db.fetchval("SELECT count(*) FROM checkout_events_handled")
                return bool(done == 5 and handled == 11)

            await eventually(all_handled, within_seconds=30)
            await asyncio.sleep(0.5)  # anything more it would do, it has done by now
        fulfilled = await db.fetch(
            "SELECT order_id, count(*) AS times FROM fulfilments GROUP BY order_id"
        )
        handled = {
            str(r["event_id"]) for r in await db.fetch("SELECT * FROM checkout_events_handled")
        }
    finally:
        await db.close()
    async with CheckoutClient.connect(shop.target, token=shop.token, ca=shop.ca.read_bytes()) as c:
        feed = await c.stub.ListEvents(events.ListEventsRequest(page_size=1000))

    # Each was killed holding a fulfilment it had not committed (webhooks, and so events, come
    # in any order: which order it was is not known beforehand).
    assert any(o in killed_at for o in orders[:3])
    assert any(o in killed_again_at for o in orders[:5])
    assert {row["order_id"]: row["times"] for row in fulfilled} == {o: 1 for o in orders[:5]}
    # Every event of the caller's feed handled once (the ids are the table's key).
    assert handled == {e.id for e in feed.events} and len(feed.events) == 11

"""`make bench`: how fast the service answers and learns, measured on this machine with the real
parts (embedded Postgres, the sandbox over HTTP, a real gRPC server and channel). Prints a table;
nothing here asserts a timing.

Rows:
- create (new session): CreateSession for a new order: ledger claim, Stripe call, ledger write.
- create (same request again): the order's open session reused: no Stripe call.
- get: GetSession by order, from the ledger.
- paid -> ledger: from the sandbox completing a payment to GetSession showing COMPLETE/PAID,
  through Stripe's signed webhook (issue 4's target: within a second).
- paid -> watcher: the same, seen by an open WatchSession stream.
- 100 concurrent creates, one order: wall time for all to return, and Stripe sessions made.
"""

from __future__ import annotations

import asyncio
import json
import socket
import statistics
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import grpc

from checkout.v1 import checkout_service_pb2 as api
from checkout.v1 import checkout_service_pb2_grpc as api_grpc
from checkout.v1 import session_pb2 as pb
from localdev.devrun import register_webhook, start_sandbox
from localdev.embedded import start_embedded
from service.app import configure_logging, start
from service.config import Settings

Stub = api_grpc.CheckoutServiceStub
ROUNDS = 50
PAYMENTS = 20


def cart(order_id: str) -> api.CreateSessionRequest:
    return api.CreateSessionRequest(
        order_id=order_id,
        currency="usd",
        line_items=[
            api.CreateSessionRequest.LineItem(
                price_data=api.CreateSessionRequest.PriceData(
                    unit_amount=1500, product_name="T-shirt"
                ),
                quantity=2,
            )
        ],
        success_url="https://shop.example/done",
    )


def new_order() -> str:
    return f"bench-{uuid.uuid4().hex[:12]}"


def pay(sandbox_url: str, session_id: str) -> None:
    request = urllib.request.Request(
        f"{sandbox_url}/_sandbox/checkout/sessions/{session_id}/pay",
        data=json.dumps({"payment_status": "paid"}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10):
        pass


async def timed(call: Callable[[], Awaitable[object]]) -> float:
    began = time.perf_counter()
    await call()
    return (time.perf_counter() - began) * 1000


async def paid_to_ledger(stub: Stub, sandbox_url: str) -> float:
    order_id = new_order()
    session = (await stub.CreateSession(cart(order_id))).session
    began = time.perf_counter()
    await asyncio.to_thread(pay, sandbox_url, session.id)
    while True:
        got = await stub.GetSession(api.GetSessionRequest(order_id=order_id))
        if got.session.payment_status == pb.Session.PAID:
            return (time.perf_counter() - began) * 1000
        await asyncio.sleep(0.002)


async def paid_to_watcher(stub: Stub, sandbox_url: str) -> float:
    order_id = new_order()
    await stub.CreateSession(cart(order_id))
    stream = stub.WatchSession(api.WatchSessionRequest(order_id=order_id), timeout=30)
    first = await stream.read()
    began = time.perf_counter()
    await asyncio.to_thread(pay, sandbox_url, first.session.id)
    update = await stream.read()
    assert update.session.payment_status == pb.Session.PAID
    stream.cancel()
    return (time.perf_counter() - began) * 1000


def sessions_created(sandbox_url: str) -> int:
    """How many sessions the sandbox has created so far (the bench diffs before and after)."""
    with urllib.request.urlopen(f"{sandbox_url}/_sandbox/stats", timeout=10) as response:
        return int(json.load(response)["sessions_created"])


def row(name: str, samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[max(0, round(len(ordered) * 0.95) - 1)]
    return (
        f"| {name} | {len(samples)} | {statistics.median(ordered):.1f} | {p95:.1f} "
        f"| {ordered[-1]:.1f} |"
    )


async def bench(sandbox_url: str, dsn: str, data_dir: Path) -> None:
    http_port = _free_port()
    secret = register_webhook(sandbox_url, f"127.0.0.1:{http_port}", data_dir / "webhook.json")
    settings = Settings.from_environ(
        {
            "DATABASE_URL": dsn,
            "GRPC_ADDR": "127.0.0.1:0",
            "HTTP_ADDR": f"127.0.0.1:{http_port}",
            "STRIPE_API_BASE": sandbox_url,
            "STRIPE_WEBHOOK_SECRET": secret,
            "LOG_LEVEL": "error",
        }
    )
    configure_logging(settings)
    app = await start(settings)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}") as channel:
            stub = Stub(channel)
            await stub.CreateSession(cart(new_order()))  # warm up connections
            created, reused, read = [], [], []
            for _ in range(ROUNDS):
                order_id = new_order()
                created.append(await timed(lambda o=order_id: stub.CreateSession(cart(o))))
                reused.append(await timed(lambda o=order_id: stub.CreateSession(cart(o))))
                read.append(
                    await timed(
                        lambda o=order_id: stub.GetSession(api.GetSessionRequest(order_id=o))
                    )
                )
            to_ledger = [await paid_to_ledger(stub, sandbox_url) for _ in range(PAYMENTS)]
            to_watcher = [await paid_to_watcher(stub, sandbox_url) for _ in range(PAYMENTS)]

            order_id = new_order()
            before = sessions_created(sandbox_url)
            began = time.perf_counter()
            answers = await asyncio.gather(
                *(stub.CreateSession(cart(order_id)) for _ in range(100))
            )
            burst = (time.perf_counter() - began) * 1000
            made = sessions_created(sandbox_url) - before
            distinct = len({a.session.id for a in answers})
    finally:
        await app.stop()

    print("| measure (ms) | n | p50 | p95 | max |")
    print("|---|---|---|---|---|")
    print(row("create (new session)", created))
    print(row("create (same request again)", reused))
    print(row("get (from the ledger)", read))
    print(row("paid -> ledger (GetSession shows PAID)", to_ledger))
    print(row("paid -> watcher (WatchSession update)", to_watcher))
    print(
        f"\n100 concurrent creates for one order: {burst:.0f} ms wall, "
        f"{made} Stripe session(s) created, {distinct} distinct id(s) returned"
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="checkout-bench-") as tmp:
        data_dir = Path(tmp)
        dsn, embedded = start_embedded(data_dir)
        sandbox = start_sandbox(0)
        try:
            asyncio.run(bench(sandbox.url, dsn, data_dir))
        finally:
            sandbox.stop()
            del embedded
    sys.stdout.flush()


if __name__ == "__main__":
    main()

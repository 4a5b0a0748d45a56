"""One call of each workload, with what it needs set up first (channels, sessions to read,
orders to reuse, a stripe-python client). A call raises on any failure, including a create that
should have been a reuse and was not."""

from __future__ import annotations

import asyncio
import functools
import itertools
import uuid
from collections.abc import Awaitable, Callable, Iterable
from contextlib import AsyncExitStack
from typing import TypeVar

import aiohttp
import grpc
import stripe
from grpc_health.v1 import health_pb2

from bench import workloads as w
from bench.carts import cart, new_order, stripe_params
from checkout.v1 import checkout_service_pb2 as api
from checkout.v1 import checkout_service_pb2_grpc as api_grpc
from service.config import SANDBOX_API_KEY

T = TypeVar("T")
Call = Callable[[int], Awaitable[None]]
"""One call by caller number `i` (0 ≤ i < concurrency)."""

_SETUP_PARALLELISM = 16
# What a caller would allow a create (clients/python's service config gives it 20 s).
_CREATE_TIMEOUT_S = 20.0


class NotReused(Exception):
    """CreateSession answered `reused: false` for a request it had already answered."""


async def prepare(load: w.Load, stack: AsyncExitStack) -> Call:
    """A closed-loop workload's call."""
    channel = await _channel(load.target, stack)
    if load.kind in (w.BARE_HEALTH, w.HEALTH):
        return _health(channel)
    stub = api_grpc.CheckoutServiceStub(channel)
    if load.kind == w.REUSE:
        return await _reuse(stub, load.concurrency)
    if load.kind in (w.GET_BY_ID, w.GET_BY_ORDER):
        return await _get(stub, load.kind, max(load.fixtures, 1))
    raise ValueError(f"no such workload: {load.kind!r}")


async def prepare_create(load: w.OpenLoad, stack: AsyncExitStack) -> Call:
    """A new-order create, through the service or straight at the sandbox."""
    if load.kind == w.DIRECT_CREATE:
        return _direct_create(load.target, load.direct_client, stack)
    if load.kind == w.CREATE:
        return _create(api_grpc.CheckoutServiceStub(await _channel(load.target, stack)))
    raise ValueError(f"no such workload: {load.kind!r}")


async def _channel(target: str, stack: AsyncExitStack) -> grpc.aio.Channel:
    channel = grpc.aio.insecure_channel(target)
    stack.push_async_callback(channel.close)
    await asyncio.wait_for(channel.channel_ready(), timeout=30)
    return channel


def _health(channel: grpc.aio.Channel) -> Call:
    # What health_pb2_grpc.HealthStub does, typed (its stubs leave Check untyped).
    check = channel.unary_unary(
        "/grpc.health.v1.Health/Check",
        request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
        response_deserializer=health_pb2.HealthCheckResponse.FromString,
    )
    request = health_pb2.HealthCheckRequest()

    async def call(_: int) -> None:
        await check(request)

    return call


def _create(stub: api_grpc.CheckoutServiceAsyncStub) -> Call:
    async def call(_: int) -> None:
        await stub.CreateSession(cart(new_order()), timeout=_CREATE_TIMEOUT_S)

    return call


async def _reuse(stub: api_grpc.CheckoutServiceAsyncStub, callers: int) -> Call:
    """Each caller asks again and again for the session of an order of its own."""
    requests = [cart(new_order()) for _ in range(callers)]
    await _bounded(functools.partial(stub.CreateSession, request) for request in requests)

    async def call(i: int) -> None:
        answer = await stub.CreateSession(requests[i])
        if not answer.reused:
            raise NotReused(answer.session.order_id)

    return call


async def _get(stub: api_grpc.CheckoutServiceAsyncStub, kind: str, sessions: int) -> Call:
    """Reads round-robin over `sessions` sessions made first."""
    made = await _bounded(
        functools.partial(stub.CreateSession, cart(new_order())) for _ in range(sessions)
    )
    if kind == w.GET_BY_ID:
        requests = [api.GetSessionRequest(session_id=m.session.id) for m in made]
    else:
        requests = [api.GetSessionRequest(order_id=m.session.order_id) for m in made]
    turns = itertools.cycle(requests)

    async def call(_: int) -> None:
        await stub.GetSession(next(turns))

    return call


def _direct_create(api_base: str, http_client: str, stack: AsyncExitStack) -> Call:
    """What a caller would do without the service: stripe-python's async client creating the
    same session, with an idempotency key. Its HTTP client is stripe-python's AIOHTTPClient:
    the HTTPXClient that stripe-python picks by default spends its CPU in httpcore's connection
    pool once hundreds of requests are in flight (`--direct-client httpx` measures it)."""
    # aiohttp's pool holds at most 100 connections unless told otherwise: with more callers
    # than that, the rest wait for a connection, and the ones that get one keep it, so the
    # calls measured are those of about 100 callers and the others starve unseen. Unlimited,
    # every caller has its call at the sandbox, as every caller of the service has its RPC.
    http: stripe.HTTPClient = (
        stripe.HTTPXClient()
        if http_client == "httpx"
        else stripe.AIOHTTPClient(connector=aiohttp.TCPConnector(limit=0))
    )
    stack.push_async_callback(http.close_async)
    client = stripe.StripeClient(
        SANDBOX_API_KEY, http_client=http, base_addresses={"api": api_base}
    )

    async def call(_: int) -> None:
        await client.v1.checkout.sessions.create_async(
            stripe_params(new_order()),  # type: ignore[arg-type]  # the service's own params
            {"idempotency_key": str(uuid.uuid4())},
        )

    return call


async def _bounded(calls: Iterable[Callable[[], Awaitable[T]]]) -> list[T]:
    """Run the calls with at most a few in flight (set-up, not measured)."""
    gate = asyncio.Semaphore(_SETUP_PARALLELISM)

    async def one(make: Callable[[], Awaitable[T]]) -> T:
        async with gate:
            return await make()

    return list(await asyncio.gather(*(one(make) for make in calls)))

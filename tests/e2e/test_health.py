"""grpc.health.v1 through the edge's interceptor: `Check`, and `Watch`, which grpc's health
servicer writes from a coroutine with `context.write` and which a client with client-side
health checking (`healthCheckConfig` in its service config) watches on every connection before
it sends a call there (https://github.com/grpc/grpc/blob/master/doc/health-checking.md)."""

from __future__ import annotations

import asyncio
import json

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from checkout.v1 import checkout_service_pb2 as api
from checkout.v1 import checkout_service_pb2_grpc as api_grpc
from service.app import Application
from service.edge.server import CHECKOUT_SERVICE
from tests.e2e.helpers import Stub, cart_request, new_order_id

HEALTH_CHECKED = json.dumps(
    {
        # Client-side health checking needs a load-balancing policy other than pick_first.
        "loadBalancingConfig": [{"round_robin": {}}],
        "healthCheckConfig": {"serviceName": CHECKOUT_SERVICE},
    }
)


async def test_a_client_that_checks_health_picks_the_server_and_its_calls_succeed(
    app: Application,
) -> None:
    async with grpc.aio.insecure_channel(
        f"127.0.0.1:{app.grpc_port}", options=[("grpc.service_config", HEALTH_CHECKED)]
    ) as channel:
        stub: Stub = api_grpc.CheckoutServiceStub(channel)
        order_id = new_order_id()
        created = await stub.CreateSession(cart_request(order_id), timeout=20)
        listed = await stub.ListSessions(api.ListSessionsRequest(order_id=order_id), timeout=20)
        assert [s.id for s in listed.sessions] == [created.session.id]
        assert channel.get_state() == grpc.ChannelConnectivity.READY


async def test_health_watch_streams_serving(app: Application) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", CHECKOUT_SERVICE):
            # types-grpcio-health-checking declares no methods on HealthStub.
            stream = health.Watch(  # type: ignore[attr-defined]
                health_pb2.HealthCheckRequest(service=service)
            )
            first = await asyncio.wait_for(stream.read(), timeout=10)
            assert first.status == health_pb2.HealthCheckResponse.SERVING
            stream.cancel()

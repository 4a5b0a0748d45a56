"""grpc.health.v1 through the edge's interceptor: `Check`, and `Watch`, which grpc's health
servicer writes from a coroutine with `context.write` and which a client with client-side
health checking (`healthCheckConfig` in its service config) watches on every connection before
it sends a call there (https://github.com/grpc/grpc/blob/master/doc/health-checking.md). And
what health says when a background task keeps failing."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from checkout.v1 import checkout_service_pb2 as api
from checkout.v1 import checkout_service_pb2_grpc as api_grpc
from service.app import Application, start
from service.config import Settings
from service.edge.callers import CallerDirectory
from service.edge.server import CHECKOUT_SERVICE
from tests.e2e.credentials import callers_document, new_token
from tests.e2e.helpers import Stub, cart_request, new_order_id
from tests.support import eventually

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


async def test_a_background_task_that_keeps_failing_makes_the_replica_unready_until_it_runs(
    environ: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The callers file's reader died once for good, silently. Now a failure is restarted,
    and one that keeps coming is a replica not to send calls to, until the task runs again."""
    callers_file = tmp_path / "callers.json"
    callers_file.write_text(callers_document([{"name": "orders", "token": new_token("orders")}]))
    app = await start(
        Settings.from_environ(
            {**environ, "CALLERS_FILE": str(callers_file), "CALLERS_RELOAD_SECONDS": "0.1"}
        )
    )
    healthy = health_pb2.HealthCheckResponse.SERVING
    try:
        async with (
            grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}") as channel,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{app.http_port}") as http,
        ):
            health = health_pb2_grpc.HealthStub(channel)

            async def status() -> int:
                answer = await health.Check(  # type: ignore[attr-defined]
                    health_pb2.HealthCheckRequest(service=CHECKOUT_SERVICE)
                )
                return int(answer.status)

            def broken(self: CallerDirectory) -> frozenset[str]:
                raise RuntimeError("the disk is gone")

            assert await status() == healthy
            with monkeypatch.context() as patched:
                patched.setattr(CallerDirectory, "reload", broken)

                async def unready() -> bool:
                    readyz = await http.get("/readyz")
                    return await status() != healthy and readyz.status_code == 503

                await eventually(unready, within_seconds=30)
                metrics = (await http.get("/metrics")).text
                assert 'checkout_background_task_up{task="callers_reload"} 0.0' in metrics
                assert 'checkout_background_task_failures_total{task="callers_reload"}' in metrics

            async def ready_again() -> bool:
                readyz = await http.get("/readyz")
                return await status() == healthy and readyz.status_code == 200

            # Up again once it has run for 10 s without failing.
            await eventually(ready_again, within_seconds=60)
    finally:
        await app.stop()

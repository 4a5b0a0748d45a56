"""A Postgres outage, on a Postgres of this test's own: calls answer UNAVAILABLE with RetryInfo
(never INTERNAL), readiness turns NOT_SERVING while liveness stays up, and once the database is
back the service recovers by itself, with every session still linked to its order. A server
started again is another server, which may lack commits (a failover's standby would): the
service notices it and reconciles the ledger with Stripe before it is ready (the failover
itself is in test_failover.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from checkout.v1 import checkout_service_pb2 as api
from tests.e2e.helpers import cart_request, detail, new_order_id, reason
from tests.e2e.processes import ServiceProcess, service_process
from tests.support import Postgres, eventually


@pytest.fixture
def postgres(postgres_folder: Path) -> Iterator[Postgres]:
    database = Postgres(postgres_folder / "pg")
    yield database
    database.stop()


async def health_status(replica: ServiceProcess) -> int:
    assert replica.channel is not None
    answer = await health_pb2_grpc.HealthStub(replica.channel).Check(  # type: ignore[attr-defined]
        health_pb2.HealthCheckRequest(), timeout=5
    )
    return int(answer.status)


async def test_an_outage_is_unavailable_not_serving_and_recovered_from(
    environ: dict[str, str], postgres: Postgres
) -> None:
    env = {**environ, "DATABASE_URL": postgres.dsn, "DB_COMMAND_TIMEOUT_SECONDS": "2"}
    async with service_process(env) as replica, httpx.AsyncClient() as http:
        order_id = new_order_id()
        created = await replica.stub.CreateSession(cart_request(order_id))
        http_base = f"http://127.0.0.1:{replica.http_port}"

        postgres.stop()

        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await replica.stub.GetSession(api.GetSessionRequest(order_id=order_id), timeout=10)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        assert reason(caught.value) == "DATABASE_UNAVAILABLE"
        assert detail(caught.value, error_details_pb2.RetryInfo).retry_delay is not None

        async def not_ready() -> bool:
            return await health_status(replica) == health_pb2.HealthCheckResponse.NOT_SERVING

        await eventually(not_ready, within_seconds=10)
        assert (await http.get(f"{http_base}/readyz")).status_code == 503
        assert (await http.get(f"{http_base}/livez")).status_code == 200

        postgres.start()

        async def ready() -> bool:
            return await health_status(replica) == health_pb2.HealthCheckResponse.SERVING

        await eventually(ready, within_seconds=20)
        assert (await http.get(f"{http_base}/readyz")).status_code == 200
        got = await replica.stub.GetSession(api.GetSessionRequest(order_id=order_id), timeout=10)
        assert got.session.id == created.session.id
        await replica.next_event("ledger reconciled with Stripe after the database changed")
        events = [str(line.get("event")) for line in replica.lines]
        assert any(e.startswith("database server changed") for e in events), events
        assert not [line for line in replica.lines if line.get("code") in ("INTERNAL", "UNKNOWN")]

"""`python -m service` as an operator runs it: one process, settings from the environment,
DATABASE_URL required, data kept across restarts, SIGTERM drains."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from checkout.v1 import checkout_service_pb2 as api
from checkout.v1 import checkout_service_pb2_grpc as api_grpc
from checkout.v1 import session_pb2 as pb
from service.config import describe_dsn
from tests.e2e.helpers import cart_request, new_order_id, reason
from tests.e2e.processes import service_process
from tests.support import Postgres

SECRET_KEY = "sk_test_do_not_log_me_0123456789"


async def test_runs_restarts_with_its_data_and_drains_on_sigterm(
    environ: dict[str, str],
) -> None:
    env = {**environ, "STRIPE_API_KEY": "", "GRPC_ADDR": "127.0.0.1:0"}
    order_id = new_order_id()

    async with service_process(env) as first:
        starting = first.lines[0]
        assert starting["event"] == "starting"
        assert starting["postgres"] == f"Postgres {describe_dsn(environ['DATABASE_URL'])}"
        assert starting["stripe"] == f"Stripe sandbox at {environ['STRIPE_API_BASE']}"
        async with grpc.aio.insecure_channel(f"127.0.0.1:{first.grpc_port}") as channel:
            # types-grpcio-health-checking declares no methods on HealthStub.
            health = await health_pb2_grpc.HealthStub(channel).Check(  # type: ignore[attr-defined]
                health_pb2.HealthCheckRequest(service="checkout.v1.CheckoutService")
            )
            assert health.status == health_pb2.HealthCheckResponse.SERVING
            created = await api_grpc.CheckoutServiceStub(channel).CreateSession(
                cart_request(order_id)
            )
        first.process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(first.process.wait(), timeout=30) == 0
        await first.next_event("stopped")

    async with service_process(env) as second:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{second.grpc_port}") as channel:
            got = await api_grpc.CheckoutServiceStub(channel).GetSession(
                api.GetSessionRequest(order_id=order_id)
            )
        assert got.session.id == created.session.id
        assert got.session.status == pb.Session.OPEN
        second.process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(second.process.wait(), timeout=30) == 0


async def test_secrets_never_reach_the_log(environ: dict[str, str]) -> None:
    env = {
        **environ,
        "STRIPE_API_KEY": SECRET_KEY,
        "STRIPE_WEBHOOK_SECRET": "whsec_do_not_log_me",
    }
    async with service_process(env) as running:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.grpc_port}") as channel:
            stub = api_grpc.CheckoutServiceStub(channel)
            created = await stub.CreateSession(
                cart_request(
                    new_order_id(),
                    ui_mode=pb.Session.EMBEDDED_PAGE,
                    success_url="",
                    return_url="https://shop.example/return?session={CHECKOUT_SESSION_ID}",
                )
            )
        running.process.send_signal(signal.SIGTERM)
        await running.next_event("stopped")
        assert running.process.stdout is not None
        rest = (await running.process.stdout.read()).decode()

    assert created.session.client_secret
    text = json.dumps(running.lines) + rest
    assert SECRET_KEY not in text
    assert "whsec_do_not_log_me" not in text
    assert created.session.client_secret not in text
    assert running.lines[0]["stripe"].endswith("(test mode key)")


async def run_to_exit(*args: str, environ: dict[str, str]) -> tuple[int, str, str]:
    """Run `python -m service *args` until it exits: its exit code, stdout and stderr, which
    never hold a traceback."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "service",
        *args,
        env={**environ, "LOG_LEVEL": "info"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert "Traceback" not in err.decode()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def failed_start(environ: dict[str, str]) -> tuple[dict[str, object], str]:
    """Run `python -m service` expecting it to refuse to start: its last log line and all
    it printed."""
    code, out, err = await run_to_exit(environ=environ)
    assert code == 1
    return json.loads(out.splitlines()[-1]), out + err


async def test_an_unreachable_database_is_one_clear_line_and_exit_code_1(
    environ: dict[str, str],
) -> None:
    dsn = "postgresql://svc:hunter2@127.0.0.1:1/checkout"
    last, printed = await failed_start({**environ, "DATABASE_URL": dsn})

    assert (last["event"], last["reason"]) == ("cannot start", "DATABASE_UNAVAILABLE")
    assert "hunter2" not in printed


async def test_a_grpc_address_in_use_is_one_clear_line_and_exit_code_1(
    environ: dict[str, str], pg_dsn: str
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**environ, "DATABASE_URL": pg_dsn, "GRPC_ADDR": f"127.0.0.1:{port}"}
        last, _ = await failed_start(env)

    assert (last["event"], last["reason"]) == ("cannot start", "ADDRESS_IN_USE")
    assert str(port) in str(last["error"])


async def test_sigterm_ends_watch_streams_at_once_so_the_drain_is_quick(
    environ: dict[str, str], pg_dsn: str
) -> None:
    order_id = new_order_id()
    env = {**environ, "DATABASE_URL": pg_dsn, "SHUTDOWN_GRACE_SECONDS": "30"}
    async with service_process(env) as replica:
        await replica.stub.CreateSession(cart_request(order_id))
        stream = replica.stub.WatchSession(api.WatchSessionRequest(order_id=order_id))
        first = await stream.read()
        assert isinstance(first, api.WatchSessionResponse)
        assert first.session.status == pb.Session.OPEN

        replica.process.send_signal(signal.SIGTERM)
        with pytest.raises(grpc.aio.AioRpcError) as ended:
            await asyncio.wait_for(stream.read(), timeout=10)
        exit_code = await asyncio.wait_for(replica.process.wait(), timeout=10)

    assert ended.value.code() == grpc.StatusCode.UNAVAILABLE
    assert reason(ended.value) == "SERVER_SHUTTING_DOWN"
    assert exit_code == 0


async def test_without_database_url_it_exits_at_once_naming_the_variable(
    environ: dict[str, str],
) -> None:
    env = {name: value for name, value in environ.items() if name != "DATABASE_URL"}
    code, _, err = await run_to_exit(environ=env)

    assert code == 2
    assert "DATABASE_URL" in err


async def test_a_malformed_callers_file_is_a_configuration_error_before_anything_listens(
    environ: dict[str, str], tmp_path: Path
) -> None:
    callers = tmp_path / "callers.json"
    callers.write_text('{"callers": [{"name": "orders", "token_sha256": "oops"}]}')
    code, out, _ = await run_to_exit(environ={**environ, "CALLERS_FILE": str(callers)})

    assert code == 2
    last = json.loads(out.splitlines()[-1])
    assert (last["event"], last["reason"]) == ("cannot start", "CONFIGURATION")
    assert "token_sha256" in last["error"]
    assert not any(json.loads(line).get("event") == "serving" for line in out.splitlines())


async def run_service(*args: str, environ: dict[str, str]) -> tuple[int, list[dict[str, Any]]]:
    code, out, _ = await run_to_exit(*args, environ=environ)
    return code, [json.loads(line) for line in out.splitlines()]


async def test_the_migration_job_migrates_and_a_replica_without_it_refuses_to_start(
    environ: dict[str, str], postgres_folder: Path
) -> None:
    postgres = Postgres(postgres_folder / "pg")
    try:
        env = {**environ, "DATABASE_URL": postgres.dsn, "MIGRATE_ON_START": "false"}
        code, lines = await run_service(environ=env)
        assert code == 1
        assert (lines[-1]["event"], lines[-1]["reason"]) == ("cannot start", "SCHEMA_BEHIND")
        assert "python -m service migrate" in lines[-1]["error"]

        code, lines = await run_service("migrate", environ=env)
        assert code == 0
        migrated = lines[-1]
        assert migrated["event"] == "migrations applied"
        assert migrated["names"][0] == "0001_ledger.sql"
        code, lines = await run_service("migrate", environ=env)
        assert (code, lines[-1]["count"]) == (0, 0)

        async with service_process(env) as replica:
            created = await replica.stub.CreateSession(cart_request(new_order_id()))
            assert created.session.status == pb.Session.OPEN
    finally:
        postgres.stop()

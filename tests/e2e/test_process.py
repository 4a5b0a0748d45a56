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
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from checkout.v1 import checkout_service_pb2 as api
from checkout.v1 import checkout_service_pb2_grpc as api_grpc
from checkout.v1 import session_pb2 as pb
from service.config import describe_dsn
from tests.e2e.credentials import Authority, callers_document, new_token
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
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    except TimeoutError:
        # It did not exit (it is serving): a failed test must not leave it behind.
        process.kill()
        await process.wait()
        raise
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


async def refused_configuration(environ: dict[str, str]) -> str:
    """Run `python -m service` expecting a refused configuration: exit code 2 and one line on
    stderr (no traceback: run_to_exit checks), nothing served."""
    code, out, err = await run_to_exit(environ=environ)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("configuration error: ")
    assert '"serving"' not in out
    return lines[0]


async def test_a_live_key_refuses_plaintext_grpc_beyond_loopback_unless_a_mesh_has_tls(
    environ: dict[str, str], tmp_path: Path
) -> None:
    callers = tmp_path / "callers.json"
    callers.write_text(callers_document([{"name": "orders", "token": new_token("orders")}]))
    live = {
        **environ,
        "STRIPE_API_KEY": "sk_live_do_not_log_me_0123456789",
        # Never called: the service calls Stripe only when asked to.
        "STRIPE_API_BASE": "https://127.0.0.1:9",
        "CALLERS_FILE": str(callers),
        "GRPC_ADDR": "0.0.0.0:0",
    }
    line = await refused_configuration(live)
    assert "TLS" in line and "GRPC_ADDR 0.0.0.0:0" in line
    assert "do_not_log_me" not in line

    async with service_process({**live, "TLS_TERMINATED_BY_MESH": "true"}) as behind_a_mesh:
        assert "TLS_TERMINATED_BY_MESH" in behind_a_mesh.lines[0]["tls"]
        behind_a_mesh.process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(behind_a_mesh.process.wait(), timeout=30) == 0


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        # Passed the live key's check, then crashed with a traceback on an empty list.
        ({"STRIPE_WEBHOOK_SECRET": ","}, "STRIPE_WEBHOOK_SECRET"),
        ({"STRIPE_WEBHOOK_SECRET": " , "}, "STRIPE_WEBHOOK_SECRET"),
        # The test hook, which kills the process after a create, never with Stripe itself.
        (
            {
                "CHECKOUT_FAULT": "crash-after-stripe-create",
                "STRIPE_API_BASE": "https://api.stripe.com",
            },
            "CHECKOUT_FAULT",
        ),
    ],
)
async def test_an_unsafe_or_broken_setting_is_refused_in_one_line(
    environ: dict[str, str], settings: dict[str, str], named: str
) -> None:
    env = {k: v for k, v in environ.items() if k != "STRIPE_API_KEY"}
    assert named in await refused_configuration({**env, **settings})


def socket_dsn(dsn: str, *, user: str, password: str, database: str) -> str:
    """A DSN for the same Postgres (reached over its Unix socket, as pgserver's are)."""
    parts = urlsplit(dsn)
    return urlunsplit(
        (parts.scheme, f"{user}:{password}@{parts.hostname or ''}", f"/{database}", parts.query, "")
    )


async def password_protected(postgres: Postgres, folder: Path, user: str, password: str) -> None:
    """`user` logs in with `password` only, as on a real server (pgserver trusts everyone)."""
    conn = await asyncpg.connect(postgres.dsn)
    try:
        await conn.execute(f"CREATE ROLE {user} LOGIN PASSWORD '{password}'")
        hba = folder / "pg_hba.conf"
        hba.write_text(
            f"local all {user} scram-sha-256\nhost all {user} all scram-sha-256\n" + hba.read_text()
        )
        await conn.execute("SELECT pg_reload_conf()")
    finally:
        await conn.close()


async def test_each_database_failure_at_start_is_one_line_naming_its_cause(
    environ: dict[str, str], tmp_path: Path
) -> None:
    folder = tmp_path / "pg"
    postgres = Postgres(folder)
    try:
        await password_protected(postgres, folder, "svc", "right-pw-0123")
        cases = [
            (
                socket_dsn(postgres.dsn, user="svc", password="wrong-pw-4567", database="postgres"),
                1,
                "DATABASE_MISCONFIGURED",
                "password authentication failed",
            ),
            (
                socket_dsn(postgres.dsn, user="svc", password="right-pw-0123", database="nope"),
                1,
                "DATABASE_MISCONFIGURED",
                'database "nope" does not exist',
            ),
            # The port is not a number: what Python says about it would quote the password.
            ("postgresql://svc:wrong-pw-4567/x@db/checkout", 2, "CONFIGURATION", "DATABASE_URL"),
            (
                "postgresql://svc:wrong-pw-4567@127.0.0.1:1/checkout",
                1,
                "DATABASE_UNAVAILABLE",
                "cannot be reached",
            ),
        ]
        for dsn, exit_code, cause, said in cases:
            code, out, err = await run_to_exit(environ={**environ, "DATABASE_URL": dsn})
            lines = out.strip().splitlines()
            assert code == exit_code, out + err
            assert [json.loads(line)["event"] for line in lines] == ["starting", "cannot start"]
            last = json.loads(lines[-1])
            assert last["reason"] == cause
            assert said in last["error"]
            assert "wrong-pw-4567" not in out + err and "right-pw-0123" not in out + err
    finally:
        postgres.stop()


@pytest.mark.parametrize("broken", ["swapped", "another key", "not PEM"])
async def test_tls_files_that_cannot_serve_are_named_not_taken_for_a_busy_address(
    environ: dict[str, str], tmp_path: Path, broken: str
) -> None:
    ca = Authority("checkout test CA")
    cert, key = ca.server().write(tmp_path, "tls")
    if broken == "swapped":
        cert, key = key, cert
    elif broken == "another key":
        key.write_bytes(ca.server().key)
    elif broken == "not PEM":
        cert.write_bytes(b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    env = {**environ, "TLS_CERT_FILE": str(cert), "TLS_KEY_FILE": str(key)}
    code, out, err = await run_to_exit(environ=env)
    last = json.loads(out.strip().splitlines()[-1])
    assert code == 2, out + err
    assert (last["event"], last["reason"]) == ("cannot start", "CONFIGURATION")
    assert "TLS_" in last["error"]
    assert "PRIVATE KEY" not in out + err


async def test_credentials_in_stripe_api_base_never_reach_the_log(environ: dict[str, str]) -> None:
    base = environ["STRIPE_API_BASE"].replace("://", "://sk_test_base_user:pw-do-not-log@")
    env = {**environ, "STRIPE_API_BASE": base, "DATABASE_URL": "postgresql://x@127.0.0.1:1/x"}
    code, out, err = await run_to_exit(environ=env)
    assert code == 1
    starting = json.loads(out.splitlines()[0])
    assert starting["stripe"].startswith("Stripe sandbox at http://***@127.0.0.1:")
    assert "pw-do-not-log" not in out + err and "sk_test_base_user" not in out + err

"""The README's grpcurl examples, run as written with real grpcurl against a real server."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

from service.app import Application

README_ADDR = "127.0.0.1:50051"


def readme_examples(repo_root: Path) -> list[str]:
    blocks = re.findall(r"```sh\n(.*?)```", (repo_root / "README.md").read_text(), re.DOTALL)
    return [b.strip() for b in blocks if b.startswith("grpcurl ")]


async def run(command: str, port: int) -> tuple[int, str, str]:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    process = await asyncio.create_subprocess_exec(
        "bash",
        "-c",
        command.replace(README_ADDR, f"127.0.0.1:{port}"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def readme_error_block(repo_root: Path) -> list[str]:
    """The grpcurl error output the README shows (the plain block that starts with ERROR:)."""
    blocks = re.findall(r"```\n(ERROR:.*?)```", (repo_root / "README.md").read_text(), re.DOTALL)
    [block] = blocks
    return str(block).splitlines()


def example(examples: list[str], *markers: str) -> str:
    [found] = [e for e in examples if all(m in e for m in markers)]
    return found


async def ok(command: str, port: int) -> dict[str, Any]:
    code, out, err = await run(command, port)
    assert code == 0, f"{command}\n{err}"
    return dict(json.loads(out))


async def test_readme_examples_work_as_written(app: Application, repo_root: Path) -> None:
    examples = readme_examples(repo_root)
    port = app.grpc_port
    assert len(examples) == 7

    code, out, _ = await run(example(examples, " list"), port)
    assert code == 0
    assert set(out.split()) >= {
        "checkout.v1.CheckoutService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    }
    assert (await ok(example(examples, "Health/Check"), port)) == {"status": "SERVING"}

    create = example(examples, "/CreateSession", '"order_id": "order-1001"')
    created = (await ok(create, port))["session"]
    assert created["id"].startswith("cs_test_")
    assert (created["status"], created["payment_status"]) == ("OPEN", "UNPAID")
    assert created["url"]
    assert (created["amount_subtotal"], created["amount_total"]) == ("3990", "3990")
    assert created["metadata"] == {"cart": "c-77", "order_id": "order-1001"}
    assert [(li["description"], li["amount_total"]) for li in created["line_items"]] == [
        ("T-shirt", "3000"),
        ("Mug", "990"),
    ]
    again = await ok(create, port)
    assert (again["session"]["id"], again["reused"]) == (created["id"], True)

    got = await ok(example(examples, "/GetSession"), port)
    assert got["session"]["id"] == created["id"]
    listed = await ok(example(examples, "/ListSessions"), port)
    assert created["id"] in [s["id"] for s in listed["sessions"]]

    expire = example(examples, "/ExpireSession")
    expired = (await ok(expire, port))["session"]
    assert (expired["id"], expired["status"]) == (created["id"], "EXPIRED")
    assert (await ok(expire, port))["session"] == expired

    code, _, err = await run(example(examples, '"order_id": "order-1002"'), port)
    assert code != 0
    shown = readme_error_block(repo_root)
    for line in shown:
        assert line.strip() in err

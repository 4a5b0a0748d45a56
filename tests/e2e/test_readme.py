"""The README, run as written: every `sh` block in order, with real grpcurl and curl, against a
real server and the sandbox. A `json` block after a command is what it prints: each value shown
must match (a value with `…` matches by its prefix, `null` means the field is absent, and
fields not shown are not checked). A stream prints a message after another: each message shown
must be among them, in that order. A command with grpcurl's `-max-time` may end at that
deadline (a stream that does not end by itself). A plain block starting with `ERROR:` is what
grpcurl prints for a refused call, and one starting with `Error invoking method` what it prints
when even reflection is refused."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest_asyncio

from service.app import Application, start
from service.config import Settings
from tests.e2e.credentials import Authority, callers_document, new_token
from tests.e2e.helpers import Sandbox

README_GRPC = "127.0.0.1:50051"
README_SANDBOX = "http://127.0.0.1:12111"
# The server with CALLERS_FILE and mutual TLS, and the caller its certificate example names.
README_GUARDED = "localhost:50443"
README_BILLING = "spiffe://cluster.local/ns/billing/sa/billing"
PLACEHOLDER_SESSION = "cs_test_…"
# What grpcurl exits with, and says, when `-max-time` ends a call: 64 + the status code.
DEADLINE_EXCEEDED = 64 + 4


@dataclass(frozen=True)
class Block:
    kind: str
    text: str


def readme_blocks(repo_root: Path) -> list[Block]:
    text = (repo_root / "README.md").read_text()
    return [Block(k, t) for k, t in re.findall(r"```(\w*)\n(.*?)```", text, re.DOTALL)]


async def run(command: str, *, cwd: Path, token: str) -> tuple[int, str, str]:
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "TOKEN": token,
    }
    process = await asyncio.create_subprocess_exec(
        "bash",
        "-c",
        command,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=cwd,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def json_values(text: str) -> list[Any]:
    """Every JSON value in `text`, one after another (a stream prints one per message)."""
    decoder, values, at = json.JSONDecoder(), [], 0
    while (at := len(text) - len(text[at:].lstrip())) < len(text):
        value, at = decoder.raw_decode(text, at)
        values.append(value)
    return values


def streamed(shown: list[Any], actual: list[Any]) -> list[str]:
    """Where the messages shown are not among those printed, in that order."""
    rest = iter(enumerate(actual))
    for want in shown:
        if not any(not matches(want, got, f"$[{i}]") for i, got in rest):
            return [f"no message matching {want!r}, in order, among {len(actual)} printed"]
    return []


def matches(shown: Any, actual: Any, path: str = "$") -> list[str]:
    """Where `actual` differs from what the README shows."""
    if isinstance(shown, dict):
        if not isinstance(actual, dict):
            return [f"{path}: expected an object, got {actual!r}"]
        problems = []
        for key, value in shown.items():
            if value is None:
                if key in actual:
                    problems.append(f"{path}.{key}: expected absent, got {actual[key]!r}")
            elif key not in actual:
                problems.append(f"{path}.{key}: missing")
            else:
                problems += matches(value, actual[key], f"{path}.{key}")
        return problems
    if isinstance(shown, list):
        if not isinstance(actual, list) or len(actual) != len(shown):
            return [f"{path}: expected {len(shown)} items, got {actual!r}"]
        return [
            p
            for i, (s, a) in enumerate(zip(shown, actual, strict=True))
            for p in matches(s, a, f"{path}[{i}]")
        ]
    if isinstance(shown, str) and "…" in shown:
        prefix = shown.split("…")[0]
        return [] if str(actual).startswith(prefix) else [f"{path}: {actual!r} !~ {shown!r}"]
    return [] if shown == actual else [f"{path}: README shows {shown!r}, got {actual!r}"]


@dataclass
class Guarded:
    """The README's server with callers and mutual TLS, and the files its examples name."""

    port: int
    folder: Path
    token: str


@pytest_asyncio.fixture
async def guarded(environ: dict[str, str], tmp_path: Path) -> AsyncIterator[Guarded]:
    ca = Authority("README CA")
    certs = tmp_path / "certs"
    certs.mkdir()
    (certs / "ca.crt").write_bytes(ca.pem)
    cert, key = ca.server().write(tmp_path, "server")
    ca.client("grpcurl").write(certs, "client")
    ca.client("billing-pod", uri=README_BILLING).write(certs, "billing")
    token = new_token("orders")
    callers = tmp_path / "callers.json"
    callers.write_text(
        callers_document(
            [
                {"name": "orders", "token": token, "role": "caller"},
                {"name": "billing", "certificate_name": README_BILLING, "role": "caller"},
            ]
        )
    )
    application = await start(
        Settings.from_environ(
            {
                **environ,
                "CALLERS_FILE": str(callers),
                "TLS_CERT_FILE": str(cert),
                "TLS_KEY_FILE": str(key),
                "TLS_CLIENT_CA_FILE": str(certs / "ca.crt"),
            }
        )
    )
    yield Guarded(application.grpc_port, tmp_path, token)
    await application.stop()


async def test_the_readme_runs_as_written(
    app: Application, guarded: Guarded, sandbox: Sandbox, repo_root: Path
) -> None:
    # The README's examples name the demo catalog, which `make run` loads (`--demo-catalog`).
    sandbox.control("POST", "/_sandbox/demo_catalog")
    blocks = readme_blocks(repo_root)
    commands = [b for b in blocks if b.kind == "sh" and ("grpcurl " in b.text or "curl " in b.text)]
    assert len(commands) >= 10
    session_id = ""
    checked_reuse = False
    for i, block in enumerate(blocks):
        if block not in commands:
            continue
        command = (
            block.text.replace(README_GRPC, f"127.0.0.1:{app.grpc_port}")
            .replace(README_GUARDED, f"localhost:{guarded.port}")
            .replace(README_SANDBOX, sandbox.url)
            .replace(PLACEHOLDER_SESSION, session_id)
        )
        code, out, err = await run(command, cwd=guarded.folder, token=guarded.token)
        shown = blocks[i + 1] if i + 1 < len(blocks) else None
        if shown is not None and shown.text.startswith(("ERROR:", "Error invoking method")):
            assert code != 0, command
            for line in shown.text.strip().splitlines():
                assert line.strip() in err, f"{command}\n{err}"
            continue
        if "-max-time" in command and code == DEADLINE_EXCEEDED:
            assert "Code: DeadlineExceeded" in err, f"{command}\n{err}"
        else:
            assert code == 0, f"{command}\n{err}"
        if shown is None or shown.kind != "json":
            continue
        printed = json_values(out)
        wanted = json_values(shown.text.replace(README_SANDBOX, sandbox.url))
        if len(printed) == len(wanted) == 1:
            problems = matches(wanted[0], printed[0])
        else:
            problems = streamed(wanted, printed)
        assert not problems, f"{block.text}\n" + "\n".join(problems)
        if "/CreateSession" not in block.text:
            continue
        session_id = printed[0]["session"]["id"]
        if not checked_reuse:
            # What the README says in prose: the same request again is reused, no Stripe call.
            again = json.loads((await run(command, cwd=guarded.folder, token=guarded.token))[1])
            assert (again["session"]["id"], again["reused"]) == (session_id, True)
            checked_reuse = True
    assert checked_reuse

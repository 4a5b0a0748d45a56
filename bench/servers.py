"""The servers as real processes: `python -m service` and the bare baseline, each logging to
files (so that its access log costs the bench nothing while it measures and its complaints about
calls cut short at the end of a window stay out of the tables), started and timed until the
line that says it is ready; and the sandbox, started as everything starts it
(sandbox/launcher.py), its log in a file too."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from sandbox.launcher import SandboxProcess
from sandbox.launcher import start_sandbox as launch_sandbox

_POLL_S = 0.002
REPO = Path(__file__).resolve().parents[1]


@dataclass
class ServerProcess:
    name: str
    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path
    serving: dict[str, Any]
    """The "serving" log line: the bound "grpc" (and "http") addresses."""
    start_s: float
    """From spawning the process to its "serving" line."""

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def grpc(self) -> str:
        return str(self.serving["grpc"])

    @property
    def http(self) -> str:
        return str(self.serving["http"])

    def forget_log(self) -> None:
        """Drop the access log written so far (the process appends, so this is safe)."""
        os.truncate(self.stdout, 0)

    def stop(self, grace_s: float = 20) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def _serving_line(raw: bytes) -> dict[str, Any] | None:
    line = _json(raw)
    return line if line.get("event") == "serving" else None


def start(
    name: str,
    module: str,
    env: dict[str, str],
    log_dir: Path,
    *,
    args: Sequence[str] = (),
    timeout_s: float = 60,
) -> ServerProcess:
    """Run `python -m module args…` and wait for its "serving" line."""
    stdout, stderr = log_dir / f"{name}.out", log_dir / f"{name}.err"
    with stdout.open("ab") as out, stderr.open("ab") as err:
        began = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", module, *args], env=env, stdout=out, stderr=err, cwd=REPO
        )
    try:
        serving = _wait_for(_serving_line, process, stdout, timeout_s)
    except RuntimeError as exc:
        raise RuntimeError(f"{exc}\n{_tail(stdout)}\n{_tail(stderr)}") from None
    start_s = time.perf_counter() - began
    return ServerProcess(name, process, stdout, stderr, serving, start_s)


def start_sandbox(log_dir: Path, name: str = "sandbox") -> SandboxProcess:
    """The Stripe sandbox on a free port, with the demo catalog, its log kept in log_dir."""
    return launch_sandbox("--port", "0", "--demo-catalog", log=log_dir / f"{name}.err")


def _wait_for(
    ready: Callable[[bytes], dict[str, Any] | None],
    process: subprocess.Popen[bytes],
    log: Path,
    timeout_s: float,
) -> dict[str, Any]:
    deadline = time.perf_counter() + timeout_s
    with log.open("rb") as lines:
        pending = b""
        while time.perf_counter() < deadline:
            pending += _read_more(lines)
            *complete, pending = pending.split(b"\n")
            for raw in complete:
                if (line := ready(raw)) is not None:
                    return line
            if process.poll() is not None:
                raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
            time.sleep(_POLL_S)
    process.kill()
    raise RuntimeError(f"{process.args!r} did not say it was ready within {timeout_s} s")


def _tail(path: Path, lines: int = 15) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _read_more(stream: BinaryIO) -> bytes:
    return stream.read() or b""


def _json(raw: bytes) -> dict[str, Any]:
    try:
        line = json.loads(raw)
    except ValueError:
        return {}
    return line if isinstance(line, dict) else {}

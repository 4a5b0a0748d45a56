"""The servers under test as real processes: `python -m service` and the bare baseline, each
logging to files (so that reading its access log costs the bench nothing while it measures),
started and timed until their "serving" line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

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


def start(
    name: str, module: str, env: dict[str, str], log_dir: Path, timeout_s: float = 60
) -> ServerProcess:
    stdout, stderr = log_dir / f"{name}.out", log_dir / f"{name}.err"
    with stdout.open("ab") as out, stderr.open("ab") as err:
        began = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", module], env=env, stdout=out, stderr=err, cwd=REPO
        )
    try:
        serving = _wait_for_serving(process, stdout, timeout_s)
    except RuntimeError as exc:
        raise RuntimeError(f"{exc}\n{_tail(stdout)}\n{_tail(stderr)}") from None
    start_s = time.perf_counter() - began
    return ServerProcess(name, process, stdout, stderr, serving, start_s)


def _wait_for_serving(
    process: subprocess.Popen[bytes], log: Path, timeout_s: float
) -> dict[str, Any]:
    deadline = time.perf_counter() + timeout_s
    with log.open("rb") as lines:
        pending = b""
        while time.perf_counter() < deadline:
            pending += _read_more(lines)
            *complete, pending = pending.split(b"\n")
            for raw in complete:
                line = _json(raw)
                if line.get("event") == "serving":
                    return line
            if process.poll() is not None:
                raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
            time.sleep(_POLL_S)
    process.kill()
    raise RuntimeError(f"{process.args!r} did not log 'serving' within {timeout_s} s")


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

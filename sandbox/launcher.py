"""The sandbox as a process of its own, started and stopped: the one way `make run` (localdev/),
the tests, `make chaos` and `make bench` start it. Nothing shipped imports it (pyproject.toml's
import contracts: nothing in `service` imports `sandbox`)."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

LISTENING = "sandbox listening on "
"""The line the sandbox prints on stdout, and nothing else, once it is bound: with its URL."""
_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class SandboxProcess:
    url: str
    process: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self, grace_seconds: float = 10.0) -> int:
        """SIGTERM (unless it already exited), then SIGKILL after the grace; its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=grace_seconds)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        return self.process.returncode


def start_sandbox(
    *args: str,
    env: Mapping[str, str] | None = None,
    log: Path | None = None,
    timeout_seconds: float = 30.0,
) -> SandboxProcess:
    """Run `python -m sandbox *args` and wait for the line that gives its address (the only
    line it prints on stdout, so the pipe never fills). `env` adds to this process's
    environment; `log` is a file its log (stderr) is appended to, else this process's stderr."""
    with ExitStack() as files:
        sink = files.enter_context(log.open("ab")) if log is not None else None
        process = subprocess.Popen(
            [sys.executable, "-m", "sandbox", *args],
            cwd=_ROOT,
            env={**os.environ, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=sink,
        )
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout_seconds)
    line = process.stdout.readline().decode() if ready else ""
    if not line.startswith(LISTENING):
        process.kill()
        process.wait()
        seen = f"it said {line!r}" if line else f"nothing within {timeout_seconds} s"
        where = f"; see {log}" if log is not None else ""
        raise RuntimeError(f"the sandbox did not start ({seen}){where}")
    return SandboxProcess(line.removeprefix(LISTENING).strip(), process)

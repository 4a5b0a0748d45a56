"""The run's two callers, named in a CALLERS_FILE of the run's own: the load's orders are shared
between them, so that the event feed's consumers can tell that a caller reads only its own."""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, slots=True)
class RunCaller:
    name: str
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24), repr=False)

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.token}"),)


def run_callers() -> tuple[RunCaller, ...]:
    return (RunCaller("shop"), RunCaller("neighbour"))


def write_callers_file(path: Path, callers: tuple[RunCaller, ...]) -> Path:
    """The file the replicas read: each caller by the SHA-256 of its token, as an operator
    writes it, and allowed to refund (the load refunds paid orders)."""
    entries = [
        {
            "name": c.name,
            "token_sha256": hashlib.sha256(c.token.encode()).hexdigest(),
            "may_refund": True,
        }
        for c in callers
    ]
    path.write_text(json.dumps({"callers": entries}, indent=2), encoding="utf-8")
    return path

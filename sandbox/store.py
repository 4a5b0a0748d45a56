"""Sandbox state and its persistence.

Objects are kept as the JSON dicts the API returns, one collection per Stripe object type
(`price`, `checkout.session`, …) in creation order; beside them, attachments that the API shows
only through other routes (a session's line items, its creation parameters), keyed by owner id;
and the idempotency records.

With a state file every mutation is written to it before the response leaves (temp file +
rename, so a crash leaves the old or the new state, never half of one). Concurrent requests
share writes: a request waits for the first write that started after its mutation, so a burst of
N creates costs a few writes, not N.
"""

import asyncio
import json
import os
import secrets
import string
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_ALPHABET = string.ascii_letters + string.digits
_FORMAT_VERSION = 1


def new_id(prefix: str, length: int = 24) -> str:
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


class Store:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.collections: dict[str, dict[str, Any]] = {}
        self.attachments: dict[str, dict[str, Any]] = {}
        self.idempotency: dict[str, dict[str, Any]] = {}
        self.created: Counter[str] = Counter()
        self._changes = 0
        self._saved = 0
        self._write_lock = asyncio.Lock()

    def get(self, kind: str, object_id: str) -> Any:
        return self.collections.get(kind, {}).get(object_id)

    def all(self, kind: str) -> Iterator[Any]:
        """Every object of a kind, oldest first."""
        return iter(self.collections.get(kind, {}).values())

    def insert(self, kind: str, object_id: str, value: Any) -> None:
        self.collections.setdefault(kind, {})[object_id] = value
        self.created[kind] += 1
        self.changed()

    def replace(self, kind: str, object_id: str, value: Any) -> None:
        self.collections.setdefault(kind, {})[object_id] = value
        self.changed()

    def remove(self, kind: str, object_id: str) -> None:
        self.collections.get(kind, {}).pop(object_id, None)
        self.changed()

    def attach(self, name: str, owner_id: str, value: Any) -> None:
        self.attachments.setdefault(name, {})[owner_id] = value
        self.changed()

    def detach(self, name: str, owner_id: str) -> None:
        self.attachments.get(name, {}).pop(owner_id, None)
        self.changed()

    def attached(self, name: str, owner_id: str) -> Any:
        return self.attachments.get(name, {}).get(owner_id)

    def changed(self) -> None:
        self._changes += 1

    def reset(self) -> None:
        self.collections.clear()
        self.attachments.clear()
        self.idempotency.clear()
        self.created.clear()
        self.changed()

    def load(self) -> None:
        if self.path is None or not self.path.exists():
            return
        data = json.loads(self.path.read_text(encoding="utf-8"))
        if data.get("version") != _FORMAT_VERSION:
            raise ValueError(
                f"{self.path}: unsupported sandbox state version {data.get('version')}"
            )
        self.collections = data["collections"]
        self.attachments = data["attachments"]
        self.idempotency = data["idempotency"]

    async def flush(self) -> None:
        """Persist every change made so far; returns once a write containing them is on disk."""
        if self.path is None:
            return
        wanted = self._changes
        async with self._write_lock:
            if self._saved >= wanted:
                return
            written = self._changes
            # Serialise on the loop, where nothing mutates meanwhile; only the disk I/O moves off.
            payload = json.dumps(
                {
                    "version": _FORMAT_VERSION,
                    "collections": self.collections,
                    "attachments": self.attachments,
                    "idempotency": self.idempotency,
                }
            ).encode()
            await asyncio.to_thread(_write_atomically, self.path, payload)
            self._saved = written


def _write_atomically(path: Path, payload: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with temporary.open("wb") as handle:
        handle.write(payload)
        handle.flush()
        os.fsync(handle.fileno())
    temporary.replace(path)

"""Who may call: the CALLERS_FILE, read at start-up and again whenever it changes.

    {"callers": [
      {"name": "orders",  "token_sha256": "<hex sha256 of the token>", "role": "caller"},
      {"name": "billing", "certificate_name": "spiffe://cluster.local/ns/billing/sa/billing",
       "role": "caller"},
      {"name": "oncall",  "token_sha256": "<hex>", "role": "operator"}
    ]}

JSON or YAML. Tokens are never stored, only their SHA-256. Kubernetes updates a mounted Secret
in place by swapping a symlink (https://kubernetes.io/docs/concepts/configuration/secret/#using-secrets-as-files-from-a-pod),
so the file is watched by its content, not by one inode: a change takes effect within the poll
interval, without a restart. A malformed change is logged and ignored; the last good list stays.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
import yaml

from service.domain.model import Caller, Role

log = structlog.get_logger("callers")

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class CallersFileError(ValueError):
    """The file is unreadable or malformed; the message says where, never a token's hash."""


@dataclass(frozen=True, slots=True)
class CallerEntry:
    caller: Caller
    token_sha256: tuple[bytes, ...]
    """More than one while a token is being rotated: the new one and the old one."""
    certificate_name: str | None


class CallerDirectory:
    """The callers as last read from the file. Look-ups are plain reads of an immutable list,
    replaced whole on reload, so a request never sees half a file."""

    def __init__(self, path: Path, entries: Sequence[CallerEntry]) -> None:
        self._path = path
        self._entries = tuple(entries)
        self._content = b""

    @classmethod
    def load(cls, path: Path) -> CallerDirectory:
        content = _read(path)
        directory = cls(path, parse_callers(content, source=str(path)))
        directory._content = content
        return directory

    @property
    def names(self) -> frozenset[str]:
        return frozenset(entry.caller.name for entry in self._entries)

    def by_token(self, token: str) -> Caller | None:
        digest = hashlib.sha256(token.encode()).digest()
        found = None
        # Compare with every entry, in constant time each, so that timing tells nothing.
        for entry in self._entries:
            for known in entry.token_sha256:
                if hmac.compare_digest(digest, known):
                    found = entry.caller
        return found

    def by_certificate(self, names: Sequence[str]) -> Caller | None:
        for entry in self._entries:
            if entry.certificate_name is not None and entry.certificate_name in names:
                return entry.caller
        return None

    def reload(self) -> bool:
        """Read the file again; True if it changed and was taken."""
        try:
            content = _read(self._path)
            if content == self._content:
                return False
            entries = parse_callers(content, source=str(self._path))
        except CallersFileError as exc:
            log.error("callers file change ignored; the last good one stays", error=str(exc))
            return False
        self._entries = tuple(entries)
        self._content = content
        log.info("callers file reloaded", callers=sorted(self.names))
        return True

    async def watch(self, interval_seconds: float) -> None:
        while True:
            await asyncio.sleep(interval_seconds)
            self.reload()


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CallersFileError(f"cannot read {path}: {exc.strerror}") from None


def parse_callers(content: bytes, *, source: str) -> list[CallerEntry]:
    try:
        document: Any = yaml.safe_load(content) if content.strip() else None
    except yaml.YAMLError:
        # JSON is YAML; a file that is neither gets one message, without its contents.
        try:
            document = json.loads(content)
        except ValueError:
            raise CallersFileError(f"{source} is neither JSON nor YAML") from None
    if not isinstance(document, Mapping) or not isinstance(document.get("callers"), list):
        raise CallersFileError(f'{source} must hold {{"callers": [...]}}')
    entries = [
        _entry(item, f"{source}: callers[{i}]") for i, item in enumerate(document["callers"])
    ]
    names = [entry.caller.name for entry in entries]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise CallersFileError(f"{source}: caller names must be unique: {', '.join(duplicates)}")
    return entries


def _entry(item: object, where: str) -> CallerEntry:
    if not isinstance(item, Mapping):
        raise CallersFileError(f"{where} must be an object")
    unknown = set(item) - {"name", "token_sha256", "certificate_name", "role"}
    if unknown:
        raise CallersFileError(f"{where} has unknown fields: {', '.join(sorted(unknown))}")
    name = item.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise CallersFileError(
            f"{where}.name must be 1-63 lower-case letters, digits, '.', '_' or '-'"
        )
    role = item.get("role", Role.CALLER.value)
    if role not in tuple(Role):
        raise CallersFileError(f"{where}.role must be caller or operator")
    token = item.get("token_sha256")
    certificate = item.get("certificate_name")
    if (token is None) == (certificate is None):
        raise CallersFileError(f"{where} needs exactly one of token_sha256 or certificate_name")
    # A list during a rotation: the new token's hash and the old one's, both accepted.
    hashes = [token] if isinstance(token, str) else token
    if token is not None and (
        not isinstance(hashes, list)
        or not hashes
        or not all(isinstance(h, str) and _SHA256.match(h.lower()) for h in hashes)
    ):
        raise CallersFileError(
            f"{where}.token_sha256 must be 64 hex digits, or a list of them during a rotation"
        )
    if certificate is not None and (not isinstance(certificate, str) or not certificate):
        raise CallersFileError(f"{where}.certificate_name must be a non-empty string")
    return CallerEntry(
        caller=Caller(name, Role(role)),
        token_sha256=tuple(bytes.fromhex(h) for h in hashes or ()),
        certificate_name=certificate,
    )

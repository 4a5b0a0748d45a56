"""Who may call: the CALLERS_FILE, read at start-up and again whenever it changes.

    {"callers": [
      {"name": "orders",  "token_sha256": "<hex sha256 of the token>", "role": "caller",
       "max_streams": 200, "stripe_calls_per_second": 10, "stripe_burst": 20,
       "may_refund": true},
      {"name": "billing", "certificate_name": "spiffe://cluster.local/ns/billing/sa/billing",
       "role": "caller"},
      {"name": "legacy",  "certificate_name": "legacy-batch", "certificate_match": "common_name"},
      {"name": "oncall",  "token_sha256": "<hex>", "role": "operator"}
    ]}

JSON or YAML. Tokens are never stored, only their SHA-256. Kubernetes updates a mounted Secret
in place by swapping a symlink (https://kubernetes.io/docs/concepts/configuration/secret/#using-secrets-as-files-from-a-pod),
so the file is watched by its content, not by one inode: a change takes effect within the poll
interval, without a restart. A change that cannot be taken (malformed, or one the parser cannot
even read, such as nesting deep enough to exhaust the stack) is logged and ignored; the last
good list stays. A caller the change removes, or whose entry it changes, is revoked: its open
streams end (quotas.py).

A client certificate is named the way SPIFFE names workloads
(https://github.com/spiffe/spiffe/blob/main/standards/X509-SVID.md): by its URI SANs when it
has any, and then only by them; a `certificate_name` with a scheme (`spiffe://…`) is a URI and
matches a URI SAN, nothing else. A certificate without URI SANs is named by its DNS SANs. The
subject CN, which an issuer lets a requester choose more freely, names a caller only for a
certificate without any SAN, and only for an entry that asks for it with
`"certificate_match": "common_name"`.

`max_streams`, `stripe_calls_per_second` and `stripe_burst` override the settings' defaults
(CALLER_MAX_STREAMS, CALLER_STRIPE_CALLS_PER_SECOND, CALLER_STRIPE_BURST) for one caller.

`may_refund` (a boolean, false when absent) lets a `caller` refund its orders' payments
(RefundPayment): giving money back is a permission of its own, beyond capturing and releasing
them, which every caller may do on its own orders. Operators, read-only, cannot be given it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import structlog
import yaml

from service.domain.model import Caller, Role
from service.edge.quotas import Limits

log = structlog.get_logger("callers")
T = TypeVar("T")

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
# A URI's scheme (https://www.rfc-editor.org/rfc/rfc3986#section-3.1); a DNS name has none.
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
SUBJECT_ALT_NAME, COMMON_NAME = "subject_alt_name", "common_name"
_FIELDS = frozenset(
    {
        "name",
        "token_sha256",
        "certificate_name",
        "certificate_match",
        "role",
        "max_streams",
        "stripe_calls_per_second",
        "stripe_burst",
        "may_refund",
    }
)


class CallersFileError(ValueError):
    """The file is unreadable or malformed; the message says where, never a token's hash."""


@dataclass(frozen=True, slots=True)
class CertificateNames:
    """What a client certificate says it is: its URI SANs, DNS SANs and subject CNs, and
    whether it has any SAN at all."""

    uris: tuple[str, ...]
    dns_names: tuple[str, ...]
    common_names: tuple[str, ...]
    has_san: bool


@dataclass(frozen=True, slots=True)
class CallerEntry:
    caller: Caller
    token_sha256: tuple[bytes, ...]
    """More than one while a token is being rotated: the new one and the old one."""
    certificate_name: str | None
    certificate_match: str = SUBJECT_ALT_NAME
    """`subject_alt_name`, or `common_name` (the CN of a certificate without SANs)."""
    max_streams: int | None = None
    stripe_calls_per_second: float | None = None
    stripe_burst: int | None = None

    def names(self, certificate: CertificateNames) -> bool:
        """Whether this entry names the certificate's caller (the module's docstring)."""
        name = self.certificate_name
        if name is None:
            return False
        if self.certificate_match == COMMON_NAME:
            return not certificate.has_san and name in certificate.common_names
        if _SCHEME.match(name):
            return name in certificate.uris
        # DNS names are case-insensitive (https://www.rfc-editor.org/rfc/rfc4343).
        return not certificate.uris and name.lower() in certificate.dns_names

    def limits(self, defaults: Limits) -> Limits:
        """The defaults, with this caller's own limits where it has them."""
        return Limits(
            max_streams=_either(self.max_streams, defaults.max_streams),
            stripe_calls_per_second=_either(
                self.stripe_calls_per_second, defaults.stripe_calls_per_second
            ),
            stripe_burst=_either(self.stripe_burst, defaults.stripe_burst),
        )


def _either(own: T | None, default: T) -> T:
    return default if own is None else own


class CallerDirectory:
    """The callers as last read from the file. Look-ups are plain reads of an immutable list,
    replaced whole on reload, so a request never sees half a file."""

    def __init__(self, path: Path, entries: Sequence[CallerEntry]) -> None:
        self._path = path
        self._entries = tuple(entries)
        self._content = b""
        self._rejected: bytes | None = None

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

    def by_certificate(self, certificate: CertificateNames) -> Caller | None:
        for entry in self._entries:
            if entry.names(certificate):
                return entry.caller
        return None

    def limits(self, name: str, defaults: Limits) -> Limits:
        entry = next((e for e in self._entries if e.caller.name == name), None)
        return defaults if entry is None else entry.limits(defaults)

    def reload(self) -> frozenset[str]:
        """Read the file again; the names of the callers the change removed or changed, whose
        open streams must end (empty if nothing changed, or the change was not taken). A
        change that was not taken is not read again until the file changes once more."""
        try:
            content = _read(self._path)
            if content in (self._content, self._rejected):
                return frozenset()
            entries = parse_callers(content, source=str(self._path))
        except CallersFileError as exc:
            self._rejected = content
            log.error("callers file change ignored; the last good one stays", error=str(exc))
            return frozenset()
        before = {entry.caller.name: entry for entry in self._entries}
        after = {entry.caller.name: entry for entry in entries}
        self._entries = tuple(entries)
        self._content = content
        revoked = frozenset(name for name, entry in before.items() if after.get(name) != entry)
        log.info("callers file reloaded", callers=sorted(self.names), revoked=sorted(revoked))
        return revoked

    async def watch(
        self, interval_seconds: float, revoked: Callable[[frozenset[str]], None]
    ) -> None:
        """Re-read the file every interval; tell `revoked` whom each change revoked. Read and
        parsed on a worker thread: a large or pathological file must not hold the event loop
        (the list is replaced whole, so a call sees the old list or the new one)."""
        while True:
            await asyncio.sleep(interval_seconds)
            if gone := await asyncio.to_thread(self.reload):
                revoked(gone)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CallersFileError(f"cannot read {path}: {exc.strerror}") from None


def parse_callers(content: bytes, *, source: str) -> list[CallerEntry]:
    try:
        document = _document(content, source)
    except CallersFileError:
        raise
    except Exception as exc:
        # Whatever else a hostile or broken file makes the parsers raise (RecursionError for
        # deep nesting, MemoryError…), it is a file that cannot be taken: never a crash.
        raise CallersFileError(f"{source} cannot be parsed ({type(exc).__name__})") from None
    if not isinstance(document, Mapping) or not isinstance(document.get("callers"), list):
        raise CallersFileError(f'{source} must hold {{"callers": [...]}}')
    entries = [
        _entry(item, f"{source}: callers[{i}]") for i, item in enumerate(document["callers"])
    ]
    for what, values in (
        ("caller names", [entry.caller.name for entry in entries]),
        ("certificate names", [e.certificate_name for e in entries if e.certificate_name]),
    ):
        duplicates = sorted({value for value in values if values.count(value) > 1})
        if duplicates:
            raise CallersFileError(f"{source}: {what} must be unique: {', '.join(duplicates)}")
    return entries


def _document(content: bytes, source: str) -> Any:
    try:
        return yaml.safe_load(content) if content.strip() else None
    except yaml.YAMLError:
        # JSON is YAML; a file that is neither gets one message, without its contents.
        try:
            return json.loads(content)
        except ValueError:
            raise CallersFileError(f"{source} is neither JSON nor YAML") from None


def _entry(item: object, where: str) -> CallerEntry:
    if not isinstance(item, Mapping):
        raise CallersFileError(f"{where} must be an object")
    unknown = set(item) - _FIELDS
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
    return CallerEntry(
        caller=Caller(name, Role(role), may_refund=_may_refund(item, Role(role), where)),
        token_sha256=tuple(bytes.fromhex(h) for h in hashes or ()),
        certificate_name=certificate,
        certificate_match=_certificate_match(item, certificate, where),
        max_streams=_limit(item, "max_streams", where, low=0, high=1_000_000, whole=True),
        stripe_calls_per_second=_limit(
            item, "stripe_calls_per_second", where, low=0.001, high=10_000, whole=False
        ),
        stripe_burst=_limit(item, "stripe_burst", where, low=1, high=100_000, whole=True),
    )


def _may_refund(item: Mapping[str, Any], role: Role, where: str) -> bool:
    may = item.get("may_refund", False)
    if not isinstance(may, bool):
        raise CallersFileError(f"{where}.may_refund must be true or false")
    if may and role != Role.CALLER:
        raise CallersFileError(f"{where}.may_refund: an {role} only reads; it cannot refund")
    return may


def _certificate_match(item: Mapping[str, Any], certificate: object, where: str) -> str:
    if certificate is not None and (not isinstance(certificate, str) or not certificate):
        raise CallersFileError(f"{where}.certificate_name must be a non-empty string")
    match = item.get("certificate_match", SUBJECT_ALT_NAME)
    if match not in (SUBJECT_ALT_NAME, COMMON_NAME):
        raise CallersFileError(
            f"{where}.certificate_match must be {SUBJECT_ALT_NAME} or {COMMON_NAME}"
        )
    if match == COMMON_NAME and (not isinstance(certificate, str) or _SCHEME.match(certificate)):
        # A URI names a workload by its URI SAN only: a CN that looks like one proves nothing.
        raise CallersFileError(
            f"{where}.certificate_match common_name needs a certificate_name that is not a URI"
        )
    return str(match)


def _limit(
    item: Mapping[str, Any], field: str, where: str, *, low: float, high: float, whole: bool
) -> Any:
    value = item.get(field)
    if value is None:
        return None
    # YAML and JSON booleans are ints to Python; neither is a limit.
    kinds = (int,) if whole else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not low <= value <= high:
        kind = "a whole number" if whole else "a number"
        raise CallersFileError(f"{where}.{field} must be {kind} from {low:g} to {high:g}")
    return value

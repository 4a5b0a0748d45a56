"""Authentication and the caller of each RPC.

A caller proves who it is with `authorization: Bearer <token>` or with a client certificate
(mutual TLS) named in CALLERS_FILE (by its URI SANs, or else its DNS SANs, or, for an entry that
opts in, the CN of a certificate without SANs: callers.py). A call that carries both must have
them name the same caller: a certificate never outvotes a token, nor a token a certificate. The
caller found is bound to the RPC (`current_caller()`) for the use cases to scope by, and to its
log lines. Health is open to all, for kubelet probes; reflection follows REFLECTION.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from contextvars import ContextVar
from typing import Any, TypeAlias

import grpc
import structlog
from cryptography import x509
from cryptography.x509.oid import NameOID
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection

from service.domain.errors import Unauthenticated
from service.domain.model import LOCAL_CALLER, Caller
from service.edge.callers import CallerDirectory, CertificateNames
from service.edge.status import status_for

_CALLER: ContextVar[Caller] = ContextVar("caller")
_HEALTH_PREFIX = f"/{health_pb2.DESCRIPTOR.services_by_name['Health'].full_name}/"
_REFLECTION_PREFIX = f"/{reflection.SERVICE_NAME}/"
_BEARER = "bearer "
NO_CREDENTIALS = Unauthenticated(
    "no valid credentials: send `authorization: Bearer <token>` or a client certificate named "
    "in CALLERS_FILE"
)
# Neither message quotes a credential: each says only which of them disagree.
CREDENTIALS_DISAGREE = Unauthenticated(
    "the client certificate and the bearer token name different callers: send the credentials "
    "of one caller"
)
TOKEN_NAMES_NO_ONE = Unauthenticated(
    "the bearer token names no caller in CALLERS_FILE, though the client certificate does: "
    "send a valid token, or none"
)

# A string: grpc's classes are generic only in the type stubs, not at run time.
Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"
# An RPC's metadata as grpc hands it over: (name, value) pairs, a `-bin` value as bytes.
Metadata: TypeAlias = Iterable[tuple[str, str | bytes]]


def current_caller() -> Caller:
    """The authenticated caller of the RPC being served."""
    return _CALLER.get()


class Authenticator:
    """Who is calling. `directory` None means authentication is off (allowed on loopback only):
    every RPC is the one local caller's. The edge interceptor (interceptors.py) asks it, once
    per method, whether the method needs a caller, then on each call of one that does, who
    it is."""

    def __init__(self, directory: CallerDirectory | None, *, open_reflection: bool) -> None:
        self._directory = directory
        self._open_reflection = open_reflection

    def required(self, method: str) -> bool:
        if method.startswith(_HEALTH_PREFIX):
            return False
        return not (self._open_reflection and method.startswith(_REFLECTION_PREFIX))

    def identify(self, metadata: Metadata, context: Context) -> Caller | Unauthenticated:
        """The caller of an RPC, bound to it (`current_caller()`); or why it has none, which
        `refuse` answers."""
        caller = self._authenticate(metadata, context)
        if isinstance(caller, Caller):
            # Each RPC runs in a task of its own, so this binding ends with the RPC.
            _CALLER.set(caller)
        return caller

    async def enter(self, metadata: Metadata, context: Context) -> None:
        """Bind the caller to the RPC and to its log lines, or end it with UNAUTHENTICATED."""
        caller = self.identify(metadata, context)
        if isinstance(caller, Unauthenticated):
            await refuse(context, caller)
            return
        structlog.contextvars.bind_contextvars(caller=caller.name)

    def _authenticate(self, metadata: Metadata, context: Context) -> Caller | Unauthenticated:
        if self._directory is None:
            return LOCAL_CALLER
        pem = next(iter(context.auth_context().get("x509_pem_cert", ())), None)
        by_certificate = (
            None if pem is None else self._directory.by_certificate(certificate_names(pem))
        )
        header = header_value(metadata, "authorization")
        if header is None or header[: len(_BEARER)].lower() != _BEARER:
            return by_certificate or NO_CREDENTIALS
        by_token = self._directory.by_token(header[len(_BEARER) :].strip())
        if by_certificate is None:
            return by_token or NO_CREDENTIALS
        if by_token is None:
            return TOKEN_NAMES_NO_ONE
        return by_certificate if by_token == by_certificate else CREDENTIALS_DISAGREE


async def refuse(context: Context, why: Unauthenticated = NO_CREDENTIALS) -> None:
    """End the RPC with UNAUTHENTICATED, saying why."""
    await context.abort_with_status(status_for(why))


def header_value(metadata: Metadata, name: str) -> str | None:
    """The first text value of header `name` (lower case, as gRPC delivers names)."""
    for key, value in metadata:
        if key == name and isinstance(value, str):
            return value
    return None


@functools.lru_cache(maxsize=256)
def certificate_names(pem: bytes) -> CertificateNames:
    """The URI SANs, DNS SANs and subject CN of the client's certificate (mutual TLS), read
    from the certificate itself rather than from grpc's peer properties, whose names vary
    between grpc versions. Cached: a client sends the same certificate on every call of its
    connection, and parsing it each time would cost more than the rest of the check."""
    certificate = x509.load_pem_x509_certificate(pem)
    common_names = tuple(
        str(attribute.value)
        for attribute in certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    )
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return CertificateNames((), (), common_names, has_san=False)
    return CertificateNames(
        uris=tuple(san.get_values_for_type(x509.UniformResourceIdentifier)),
        dns_names=tuple(name.lower() for name in san.get_values_for_type(x509.DNSName)),
        common_names=common_names,
        has_san=len(san) > 0,
    )

"""Authentication and the caller of each RPC.

A caller proves who it is with `authorization: Bearer <token>` or with a client certificate
(mutual TLS) whose URI SAN, DNS SAN or subject CN is named in CALLERS_FILE. The caller found
is bound to the RPC (`current_caller()`) for the use cases to scope by, and to its log lines.
Health is open to all, for kubelet probes; reflection follows REFLECTION.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from contextvars import ContextVar
from typing import Any

import grpc
import structlog
from cryptography import x509
from cryptography.x509.oid import NameOID
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection

from service.domain.errors import Unauthenticated
from service.domain.model import LOCAL_CALLER, Caller
from service.edge.callers import CallerDirectory
from service.edge.interceptors import Continuation
from service.edge.status import status_for

_CALLER: ContextVar[Caller] = ContextVar("caller")
_HEALTH_PREFIX = f"/{health_pb2.DESCRIPTOR.services_by_name['Health'].full_name}/"
_REFLECTION_PREFIX = f"/{reflection.SERVICE_NAME}/"
_BEARER = "bearer "


def current_caller() -> Caller:
    """The authenticated caller of the RPC being served."""
    return _CALLER.get()


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """`directory` None means authentication is off (allowed on loopback only): every RPC is
    the one local caller's."""

    def __init__(self, directory: CallerDirectory | None, *, open_reflection: bool) -> None:
        self._directory = directory
        self._open_reflection = open_reflection
        self._guarded: dict[str, grpc.RpcMethodHandler[Any, Any] | None] = {}

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        # Built once per method, like the observing interceptor's: credentials are read from
        # each call's context, not captured here.
        method = handler_call_details.method
        if method in self._guarded:
            return self._guarded[method]
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        guarded = self._guarded[method] = self._guard(method, handler)
        return guarded

    def _guard(
        self, method: str, handler: grpc.RpcMethodHandler[Any, Any]
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        if method.startswith(_HEALTH_PREFIX):
            return handler
        if self._open_reflection and method.startswith(_REFLECTION_PREFIX):
            return handler
        if handler.unary_unary is not None:
            unary: Any = handler.unary_unary

            async def guarded_unary(
                request: Any, context: grpc.aio.ServicerContext[Any, Any]
            ) -> Any:
                await self._enter(context)
                return await unary(request, context)

            return grpc.unary_unary_rpc_method_handler(
                guarded_unary,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            unary_stream: Any = handler.unary_stream

            async def guarded_unary_stream(
                request: Any, context: grpc.aio.ServicerContext[Any, Any]
            ) -> AsyncIterator[Any]:
                await self._enter(context)
                async for response in unary_stream(request, context):
                    yield response

            return grpc.unary_stream_rpc_method_handler(
                guarded_unary_stream,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_stream is not None:
            stream_stream: Any = handler.stream_stream

            async def guarded_stream_stream(
                requests: Any, context: grpc.aio.ServicerContext[Any, Any]
            ) -> AsyncIterator[Any]:
                await self._enter(context)
                async for response in stream_stream(requests, context):
                    yield response

            return grpc.stream_stream_rpc_method_handler(
                guarded_stream_stream,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        # No method of ours is client-streaming; refuse rather than serve one unauthenticated.
        return None

    async def _enter(self, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        caller = self._authenticate(dict(context.invocation_metadata() or ()), context)
        if caller is None:
            await context.abort_with_status(
                status_for(
                    Unauthenticated(
                        "no valid credentials: send `authorization: Bearer <token>` or a "
                        "client certificate named in CALLERS_FILE"
                    )
                )
            )
            return
        # Each RPC runs in a task of its own, so this binding ends with the RPC.
        _CALLER.set(caller)
        structlog.contextvars.bind_contextvars(caller=caller.name)

    def _authenticate(
        self, metadata: Mapping[str, str | bytes], context: grpc.aio.ServicerContext[Any, Any]
    ) -> Caller | None:
        if self._directory is None:
            return LOCAL_CALLER
        names = certificate_names(context.auth_context())
        if names:
            by_certificate = self._directory.by_certificate(names)
            if by_certificate is not None:
                return by_certificate
        header = metadata.get("authorization")
        if isinstance(header, str) and header[: len(_BEARER)].lower() == _BEARER:
            return self._directory.by_token(header[len(_BEARER) :].strip())
        return None


def certificate_names(auth_context: Mapping[str, Iterable[bytes]]) -> list[str]:
    """The URI SANs, DNS SANs and subject CN of the client's certificate (mutual TLS), read
    from the certificate itself rather than from grpc's peer properties, whose names vary
    between grpc versions."""
    pem = next(iter(auth_context.get("x509_pem_cert", ())), None)
    if pem is None:
        return []
    certificate = x509.load_pem_x509_certificate(pem)
    names: list[str] = []
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        pass
    else:
        names += san.get_values_for_type(x509.UniformResourceIdentifier)
        names += san.get_values_for_type(x509.DNSName)
    names += [
        str(attribute.value)
        for attribute in certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    ]
    return names

"""A Python client for checkout.v1.CheckoutService: the generated stubs (`checkout.v1`) and a
channel set up the way the service expects to be called.

    from checkout.v1 import checkout_service_pb2 as api
    from checkout_client import CheckoutClient

    async with CheckoutClient.connect("checkout.payments:50051", token=TOKEN, ca=CA_PEM) as client:
        session = await client.stub.CreateSession(api.CreateSessionRequest(...))

The channel carries the service config the service's authors recommend
(`service_config.json`, https://grpc.io/docs/guides/retry/): per-method timeouts, and
transparent retries of UNAVAILABLE with backoff. Retrying CreateSession is safe: the service
answers the same request for the same order with the same session (send a `request_id` to be
sure across your own restarts).

Every payment outcome of your orders, from any cursor, as it commits (feed.py):

    async for event in client.events(after=stored_cursor):
        ...  # handle it and store event.cursor in one transaction of your own
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from importlib import resources
from types import TracebackType
from typing import Any

import grpc

from checkout.v1 import checkout_service_pb2_grpc as api_grpc
from checkout.v1 import event_pb2 as events
from checkout_client.feed import follow_events

__all__ = ["CheckoutClient", "follow_events", "service_config"]


def service_config() -> str:
    """The recommended gRPC service config, as JSON."""
    return (resources.files(__name__) / "service_config.json").read_text()


class _BearerToken(grpc.AuthMetadataPlugin):
    def __init__(self, token: str) -> None:
        self._metadata = (("authorization", f"Bearer {token}"),)

    def __call__(
        self, context: grpc.AuthMetadataContext, callback: grpc.AuthMetadataPluginCallback
    ) -> None:
        callback(self._metadata, None)


@dataclass
class CheckoutClient:
    channel: grpc.aio.Channel

    @property
    def stub(self) -> Any:
        """A `checkout.v1.CheckoutServiceStub` on the channel."""
        return api_grpc.CheckoutServiceStub(self.channel)

    @classmethod
    def connect(
        cls,
        target: str,
        *,
        token: str | None = None,
        ca: bytes | None = None,
        certificate: tuple[bytes, bytes] | None = None,
        plaintext: bool = False,
    ) -> CheckoutClient:
        """A channel to `target`: TLS trusting `ca` (the system's roots if None), with a
        client `certificate` (cert, key) for mutual TLS and/or a bearer `token`. `plaintext`
        is for a service on loopback with authentication off (a laptop)."""
        options = [
            ("grpc.service_config", json.dumps(json.loads(service_config()))),
            ("grpc.enable_retries", 1),
        ]
        if plaintext:
            if token is not None:
                raise ValueError("a token is never sent over plaintext")
            return cls(grpc.aio.insecure_channel(target, options=options))
        key, chain = (certificate[1], certificate[0]) if certificate else (None, None)
        credentials = grpc.ssl_channel_credentials(ca, key, chain)
        if token is not None:
            credentials = grpc.composite_channel_credentials(
                credentials, grpc.metadata_call_credentials(_BearerToken(token))
            )
        return cls(grpc.aio.secure_channel(target, credentials, options=options))

    def events(
        self,
        *,
        after: str = "",
        types: Iterable[events.Event.Type.ValueType] = (),
        caller: str = "",
    ) -> AsyncIterator[events.Event]:
        """The caller's events after `after`, then each as it commits, riding out UNAVAILABLE
        from the last cursor handed out (feed.follow_events)."""
        return follow_events(self.stub, after=after, types=types, caller=caller)

    async def close(self) -> None:
        await self.channel.close()

    async def __aenter__(self) -> CheckoutClient:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await self.close()

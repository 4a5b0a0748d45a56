"""The gRPC server: the CheckoutService, grpc.health.v1 and server reflection (for grpcurl)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from checkout.v1 import checkout_service_pb2, checkout_service_pb2_grpc
from service.domain.checkout import Checkout
from service.domain.feed import EventFeed
from service.edge.auth import Authenticator
from service.edge.callers import CallerDirectory
from service.edge.interceptors import EdgeInterceptor
from service.edge.payment_calls import PaymentCalls
from service.edge.quotas import CallerQuotas
from service.edge.servicer import CheckoutServicer, WatchLimits
from service.observability.metrics import Metrics

CHECKOUT_SERVICE = checkout_service_pb2.DESCRIPTOR.services_by_name["CheckoutService"].full_name


HEALTH_SERVICE = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name


def build_grpc_server(
    checkout: Checkout,
    feed: EventFeed,
    stopping: asyncio.Event,
    health_servicer: health.aio.HealthServicer,
    *,
    callers: CallerDirectory | None,
    quotas: CallerQuotas,
    reflection_mode: str,
    max_receive_bytes: int,
    watch_limits: WatchLimits,
    metrics: Metrics,
    traced: bool,
    payments: PaymentCalls,
    hold_writes: Callable[[], None] | None = None,
) -> grpc.aio.Server:
    """The public gRPC server. `callers` None: authentication off (loopback only, checked by
    the settings). `reflection_mode`: `authenticated`, `open` or `off`. `hold_writes()` raises
    while the calls that act on an order must wait (interceptors.py)."""
    server = grpc.aio.server(
        interceptors=[
            EdgeInterceptor(
                metrics,
                Authenticator(callers, open_reflection=reflection_mode == "open"),
                quotas,
                traced=traced,
                hold_writes=hold_writes,
            )
        ],
        # A request larger than any valid one (100 line items with every field at Stripe's
        # limits stays far below a megabyte) is refused by grpc before it is parsed.
        options=[("grpc.max_receive_message_length", max_receive_bytes)],
    )
    checkout_service_pb2_grpc.add_CheckoutServiceServicer_to_server(
        CheckoutServicer(
            checkout, stopping, watch_limits, quotas, metrics, feed, payments, hold_writes
        ),
        server,
    )
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    if reflection_mode != "off":
        reflection.enable_server_reflection(
            (CHECKOUT_SERVICE, HEALTH_SERVICE, reflection.SERVICE_NAME), server
        )
    return server


def build_health_server(health_servicer: health.aio.HealthServicer) -> grpc.aio.Server:
    """Health alone, in plaintext: kubelet's gRPC probes cannot speak TLS
    (https://kubernetes.io/docs/tasks/configure-pod-container/configure-liveness-readiness-startup-probes/#define-a-grpc-liveness-probe)."""
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    return server


async def set_serving(health_servicer: health.aio.HealthServicer, serving: bool) -> None:
    status = (
        health_pb2.HealthCheckResponse.SERVING
        if serving
        else health_pb2.HealthCheckResponse.NOT_SERVING
    )
    for name in ("", CHECKOUT_SERVICE):
        await health_servicer.set(name, status)

"""The gRPC server: the CheckoutService, grpc.health.v1 and server reflection (for grpcurl)."""

from __future__ import annotations

import asyncio

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from checkout.v1 import checkout_service_pb2, checkout_service_pb2_grpc
from service.domain.checkout import Checkout
from service.edge.interceptors import AccessLogInterceptor
from service.edge.servicer import CheckoutServicer

CHECKOUT_SERVICE = checkout_service_pb2.DESCRIPTOR.services_by_name["CheckoutService"].full_name


def build_grpc_server(
    checkout: Checkout, stopping: asyncio.Event
) -> tuple[grpc.aio.Server, health.aio.HealthServicer]:
    server = grpc.aio.server(interceptors=[AccessLogInterceptor()])
    checkout_service_pb2_grpc.add_CheckoutServiceServicer_to_server(
        CheckoutServicer(checkout, stopping), server
    )
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (
            CHECKOUT_SERVICE,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ),
        server,
    )
    return server, health_servicer


async def set_serving(health_servicer: health.aio.HealthServicer, serving: bool) -> None:
    status = (
        health_pb2.HealthCheckResponse.SERVING
        if serving
        else health_pb2.HealthCheckResponse.NOT_SERVING
    )
    for name in ("", CHECKOUT_SERVICE):
        await health_servicer.set(name, status)

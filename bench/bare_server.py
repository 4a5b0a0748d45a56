"""The baseline server: grpc.aio with the health service only, no interceptors, no reflection.
`python -m bench.bare_server` binds a free loopback port and logs the same "serving" line as
the service, so the bench starts both the same way."""

from __future__ import annotations

import asyncio
import json
import signal

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc


async def serve() -> None:
    server = grpc.aio.server()
    servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    await servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    print(json.dumps({"event": "serving", "grpc": f"127.0.0.1:{port}"}), flush=True)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    await stopping.wait()
    await server.stop(1)


if __name__ == "__main__":
    asyncio.run(serve())

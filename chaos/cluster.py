"""The replicas as callers see them: a set of gRPC channels, one per live replica, behind
which a replica can be killed and started again. Each replica has a webhook endpoint of its
own at the sandbox (Stripe sends every event to every endpoint), so that a killed replica's
events still reach the others, and its own are re-pointed once it is back on a new port."""

from __future__ import annotations

import asyncio
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

import grpc

from chaos.postgres import application_name_of, with_application_name
from chaos.processes import Replica, ReplicaLog
from chaos.sandbox import API_KEY, SandboxControl
from checkout.v1 import checkout_service_pb2_grpc as api_grpc
from service.domain.sync import HANDLED_EVENTS
from service.edge.http import WEBHOOK_PATH

# What `CheckoutServiceStub(channel)` is on a grpc.aio channel; the class exists for type
# checkers only, hence the quotes.
Stub: TypeAlias = "api_grpc.CheckoutServiceAsyncStub"
# Nothing listens on the discard port: an endpoint points there until its replica is up.
_NOWHERE = f"http://127.0.0.1:9{WEBHOOK_PATH}"
_RESTART_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class Settings:
    """The service's settings for the run, the same on every replica but the webhook secret."""

    database_url: str
    stripe_api_base: str
    callers_file: Path
    sweep_interval_seconds: float = 1.0
    sweep_quiet_seconds: float = 5.0
    stripe_timeout_seconds: float = 3.0
    stripe_max_network_retries: int = 1
    connections_named_by_replica: bool = False
    """Each replica connects as `<the URL's application_name>-<replica>`, so that its
    connections are told apart in pg_stat_activity (make soak)."""

    def environ(self, webhook_secret: str, replica: str = "") -> dict[str, str]:
        database_url = self.database_url
        if self.connections_named_by_replica:
            name = f"{application_name_of(database_url)}-{replica}"
            database_url = with_application_name(database_url, name)
        # Built from nothing but what the service needs: an exported STRIPE_API_KEY must not
        # send the run to real Stripe.
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "DATABASE_URL": database_url,
            "STRIPE_API_BASE": self.stripe_api_base,
            "STRIPE_API_KEY": API_KEY,
            "STRIPE_WEBHOOK_SECRET": webhook_secret,
            "STRIPE_TIMEOUT_SECONDS": str(self.stripe_timeout_seconds),
            "STRIPE_MAX_NETWORK_RETRIES": str(self.stripe_max_network_retries),
            "SWEEP_INTERVAL_SECONDS": str(self.sweep_interval_seconds),
            "SWEEP_QUIET_SECONDS": str(self.sweep_quiet_seconds),
            "GRPC_ADDR": "127.0.0.1:0",
            "HTTP_ADDR": "127.0.0.1:0",
            "LOG_LEVEL": "info",
            "CALLERS_FILE": str(self.callers_file),
            # Each caller of the load does the work of many: no share of its own.
            "CALLER_STRIPE_CALLS_PER_SECOND": "10000",
            "CALLER_STRIPE_BURST": "100000",
            # Every line reaches the run's file at once: a SIGKILLed replica loses none.
            "PYTHONUNBUFFERED": "1",
        }


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    stub: Stub


@dataclass
class _Slot:
    """A replica's place in the cluster: its endpoint, secret and log outlive its process."""

    name: str
    endpoint_id: str
    webhook_secret: str
    log: ReplicaLog
    log_file: Path
    replica: Replica | None = None
    channel: grpc.aio.Channel | None = None
    stub: Stub | None = None
    incarnations: int = 0


class Cluster:
    def __init__(self, settings: Settings, sandbox: SandboxControl, log_dir: Path) -> None:
        self._settings = settings
        self._sandbox = sandbox
        self._log_dir = log_dir
        self._slots: list[_Slot] = []
        self._retired: list[grpc.aio.Channel] = []
        self._rng = random.Random()

    @property
    def logs(self) -> dict[str, ReplicaLog]:
        return {slot.name: slot.log for slot in self._slots}

    async def start(self, count: int) -> None:
        events: list[Any] = sorted(HANDLED_EVENTS)  # stripe-python types them as literals
        for index in range(count):
            endpoint_id, secret = await self._sandbox.create_webhook_endpoint(_NOWHERE, events)
            name = f"replica-{index + 1}"
            self._slots.append(
                _Slot(name, endpoint_id, secret, ReplicaLog(), self._log_dir / f"{name}.log")
            )
        await asyncio.gather(*(self._start(slot) for slot in self._slots))

    def pick(self, rng: random.Random, avoid: str = "") -> Target | None:
        """A live replica, as a load balancer would pick one; another than `avoid` when there
        is one (a retry goes elsewhere, as with a round-robin balancer)."""
        live = [Target(slot.name, slot.stub) for slot in self._slots if slot.stub is not None]
        others = [target for target in live if target.name != avoid] or live
        return rng.choice(others) if others else None

    def http_ports(self) -> dict[str, int]:
        """Each live replica's HTTP port (its /readyz)."""
        return {
            slot.name: slot.replica.http_port for slot in self._slots if slot.replica is not None
        }

    def nth(self, index: int) -> Target | None:
        """The live replicas in turn: concurrent calls that ask for 0, 1, 2… each go to
        another replica while there are as many."""
        live = [Target(slot.name, slot.stub) for slot in self._slots if slot.stub is not None]
        return live[index % len(live)] if live else None

    async def kill_and_restart(self, down_seconds: float) -> str:
        """SIGKILL one replica, leave it down a while, start it again; what was done."""
        slot = self._rng.choice(self._slots)
        replica = slot.replica
        assert replica is not None
        channel = slot.channel
        # Callers stop picking it at once; calls already on it die with it.
        slot.stub, slot.channel, slot.replica = None, None, None
        replica.kill()
        code = await replica.wait()
        if channel is not None:
            # Closed at the end, not now: closing a channel cancels its calls in the callers'
            # tasks, where a dead server fails them UNAVAILABLE, as callers should see it.
            self._retired.append(channel)
        await asyncio.sleep(down_seconds)
        for attempt in range(1, _RESTART_ATTEMPTS + 1):
            try:
                await self._start(slot)
                break
            except RuntimeError:
                # It cannot start while Postgres is away; an orchestrator would try again.
                if attempt == _RESTART_ATTEMPTS:
                    raise
                await asyncio.sleep(2.0)
        return f"{slot.name} SIGKILLed (exit {code}), {down_seconds:g} s down, restarted"

    async def stop(self) -> None:
        await asyncio.gather(*(self._stop(slot) for slot in self._slots))
        for channel in self._retired:
            await channel.close()

    async def _start(self, slot: _Slot) -> None:
        slot.incarnations += 1
        with slot.log_file.open("a", encoding="utf-8") as marker:
            marker.write(f'{{"event": "chaos: start #{slot.incarnations}"}}\n')
        replica = await Replica.start(
            slot.name,
            self._settings.environ(slot.webhook_secret, slot.name),
            slot.log_file,
            slot.log,
        )
        await self._sandbox.point_webhook_endpoint(
            slot.endpoint_id, f"http://127.0.0.1:{replica.http_port}{WEBHOOK_PATH}"
        )
        slot.replica = replica
        slot.channel = grpc.aio.insecure_channel(replica.grpc_target)
        slot.stub = api_grpc.CheckoutServiceStub(slot.channel)

    async def _stop(self, slot: _Slot) -> None:
        replica, channel = slot.replica, slot.channel
        slot.stub, slot.channel, slot.replica = None, None, None
        if channel is not None:
            await channel.close()
        if replica is not None:
            await replica.stop()

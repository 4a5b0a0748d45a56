"""The objects one running sandbox shares between its routes."""

from collections import Counter
from dataclasses import dataclass, field

from aiohttp import web

from .clock import Clock
from .faults import Faults
from .idempotency import Idempotency
from .store import Store
from .webhooks import Webhooks


@dataclass
class Stats:
    """Counts for tests that must know how often Stripe was called; reset with the state."""

    requests: Counter[str] = field(default_factory=Counter)
    """`METHOD /actual/path` of every `/v1` request."""
    routes: Counter[str] = field(default_factory=Counter)
    """`METHOD /v1/route/{param}` of every `/v1` request that matched a route."""
    replays: int = 0
    faults: int = 0


@dataclass
class Sandbox:
    store: Store
    clock: Clock
    idempotency: Idempotency
    webhooks: Webhooks
    faults: Faults = field(default_factory=Faults)
    stats: Stats = field(default_factory=Stats)
    demo_catalog: bool = False
    """Whether the demo catalog is seeded (at start and after a reset)."""


SANDBOX = web.AppKey("sandbox", Sandbox)

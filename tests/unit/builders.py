"""What the unit tests of Checkout and StripeSync share: requests built the way the edge builds
them, Stripe events, and the use cases wired to the in-memory fakes."""

from __future__ import annotations

import itertools
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from service.domain.checkout import Checkout
from service.domain.commands import CreateSessionCommand, LineItemRequest, Mode, PriceData, UiMode
from service.domain.model import Caller, CreateResult, Role, StripeEvent
from service.domain.page_tokens import PageTokens
from service.domain.ports import SessionLedger
from service.domain.sync import StripeSync
from service.store.cached_ledger import CachedLedger
from tests.unit.fakes import FakeClock, FakeStripe, InMemoryChanges, InMemoryLedger

SHOP = Caller("shop", Role.CALLER)
ORDER = "order-1001"


def command(
    order_id: str = ORDER,
    *,
    shirts: int = 2,
    request_id: str = "",
    price_id: str = "",
    expire_in: timedelta | None = None,
    clock: FakeClock | None = None,
) -> CreateSessionCommand:
    """The README's CreateSession request (two T-shirts and a mug on a hosted page), as
    service/edge/mapping.py turns it into a command: unset proto fields become the command's
    defaults, enums their Stripe values, repeated fields tuples and maps dicts. `shirts` changes
    the cart; `price_id` adds a catalogue price; `expire_in` sets `expire_time` from `clock`."""
    line_items = [
        LineItemRequest(quantity=shirts, price_data=PriceData(1500, "T-shirt")),
        LineItemRequest(quantity=1, price_data=PriceData(990, "Mug")),
    ]
    if price_id:
        line_items.append(LineItemRequest(quantity=1, price_id=price_id))
    expire_time = None
    if expire_in is not None:
        assert clock is not None, "expire_in needs the clock it counts from"
        expire_time = clock.now() + expire_in
    return CreateSessionCommand(
        order_id=order_id,
        request_id=request_id,
        mode=Mode.PAYMENT,
        ui_mode=UiMode.HOSTED_PAGE,
        currency="usd",
        line_items=tuple(line_items),
        success_url="https://shop.example/done?session={CHECKOUT_SESSION_ID}",
        expire_time=expire_time,
        metadata={"cart": "c-77"},
    )


_event_ids = (f"evt_{n:06d}" for n in itertools.count(1))


def event(
    kind: str, session_id: str, order_id: str | None = ORDER, caller: str | None = SHOP.name
) -> StripeEvent:
    """A verified `checkout.session.<kind>` event with a fresh id, about a session whose
    metadata names `order_id` and `caller`, as the service's do."""
    return StripeEvent(
        id=next(_event_ids),
        type=f"checkout.session.{kind}",
        session_id=session_id,
        order_id=order_id,
        caller=caller,
    )


def requested(cmd: CreateSessionCommand) -> tuple[bytes, Callable[[bytes], CreateSessionCommand]]:
    """The command as the edge hands it to Checkout.create_session: bytes that are equal for
    equal requests, and the way to read the command in them (pickle stands in for protobuf)."""
    return pickle.dumps(cmd), pickle.loads


@dataclass(frozen=True)
class World:
    clock: FakeClock
    changes: InMemoryChanges
    ledger: InMemoryLedger
    """The fake the use cases' ledger is, or wraps: for tests to look at."""
    stripe: FakeStripe
    checkout: Checkout
    sync: StripeSync

    async def create(self, cmd: CreateSessionCommand, caller: Caller = SHOP) -> CreateResult:
        return await self.checkout.create_session(caller, *requested(cmd))


def make_world(
    *, batch_size: int = 100, prices: dict[str, int] | None = None, cached: bool = False
) -> World:
    """Checkout and StripeSync over fresh fakes; `cached`: over a CachedLedger that wraps the
    in-memory one, as the service's wraps Postgres. Idempotency keys are `key-1`, `key-2`, … in
    the order the use cases ask for them. The sweep's settings are the service's defaults."""
    clock = FakeClock()
    changes = InMemoryChanges()
    ledger = InMemoryLedger(clock, changes)
    used: SessionLedger = ledger
    if cached:
        cache = CachedLedger(ledger)
        changes.listen(cache)
        used = cache
    stripe = FakeStripe(clock, prices=prices)
    keys = (f"key-{n}" for n in itertools.count(1))
    checkout = Checkout(
        used, stripe, changes, clock, PageTokens(b"unit-test-key"), new_key=lambda: next(keys)
    )
    sync = StripeSync(used, stripe, checkout, clock, batch_size=batch_size)
    return World(clock, changes, ledger, stripe, checkout, sync)

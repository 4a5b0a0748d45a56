"""The callers: a bounded load of orders, each a few steps as an order service takes them, and
each call made the way a good caller makes it.

A good caller sets a deadline on every call, sends a `request_id` with every create and
refund, and retries an answer that says "try again" (UNAVAILABLE, DEADLINE_EXCEEDED, ABORTED)
with the same `request_id`, after the delay the service's RetryInfo asks for (or its own
backoff), on whichever replica the balancer picks next, up to a bound. INTERNAL and UNKNOWN say
"a bug": never retried, and each one is kept with its order for the report.

Some paid orders are then refunded in parts, several refunds at once on different replicas,
asking together for more than was paid: the service must refuse what would exceed the capture
and make each refund it answered once (audit.py checks both at Stripe).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO, TypeVar

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from chaos.callers import RunCaller
from chaos.cluster import Cluster, Stub
from chaos.sandbox import SandboxControl
from chaos.scenario import Scenario
from checkout.v1 import checkout_service_pb2 as api
from checkout.v1 import session_pb2 as pb

T = TypeVar("T")
Metadata = tuple[tuple[str, str], ...]
CREATE, EXPIRE, REFUND = "CreateSession", "ExpireSession", "RefundPayment"
RETRYABLE = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
)
BUGS = frozenset({grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN})
# Without RetryInfo: 100 ms doubling, at most 2 s; with it, at most this long (a caller
# with a deadline of its own would not wait longer for one call).
_FIRST_BACKOFF_SECONDS = 0.1
_MAX_BACKOFF_SECONDS = 2.0
_MAX_RETRY_INFO_SECONDS = 5.0
_PRODUCTS = ("T-shirt", "Mug", "Poster", "Socks", "Cap", "Notebook", "Pen", "Tote bag")


@dataclass
class Oddity:
    """An INTERNAL or UNKNOWN answer, with what is needed to find it in the replicas' logs."""

    order_id: str
    method: str
    x_request_id: str
    replica: str
    code: str
    details: str


@dataclass
class Tally:
    """What the callers saw; one `Tally` for the whole run."""

    final: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(method, code) of each request's last answer, after its retries."""
    answers: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(method, code) of every answer, retries included."""
    reasons: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(code, ErrorInfo reason) of every answer that was not OK."""
    oddities: list[Oddity] = field(default_factory=list)
    orders: int = 0
    payments: int = 0
    payments_refused: int = 0
    """The sandbox refused to pay: the session had been superseded or expired meanwhile."""
    reused: int = 0
    paid_then_refused: int = 0
    """Creates after a payment that were refused FAILED_PRECONDITION, as they must be."""
    paid_then_created: int = 0
    """Creates after a payment that got a session: a paid order must be refused one."""
    refunded_orders: int = 0
    """Paid orders refunded in parts, several refunds at once on different replicas."""
    refunds: list[ToldRefund] = field(default_factory=list)
    """Each refund asked for, and what its caller was told in the end."""
    told: dict[str, list[str]] = field(default_factory=dict)
    """Each order's sessions, as its caller was told of them (CreateSession answered OK)."""
    stubborn_payments: int = 0
    """With stubborn customers: the links of earlier sessions the sandbox let them pay."""


@dataclass(frozen=True, slots=True)
class ToldRefund:
    order_id: str
    request_id: str
    amount: int
    code: str
    """The final code, after the caller's retries."""
    refund_id: str = ""
    """OK: the refund the caller was told was made."""


@dataclass
class Cart:
    lines: tuple[tuple[str, int, int], ...]
    """(product, unit amount, quantity)"""

    def changed(self, rng: random.Random) -> Cart:
        """Another cart for the same order: one more of the first line, or a new line."""
        first, *rest = self.lines
        if rng.random() < 0.5 or len(self.lines) >= 4:
            return Cart(((first[0], first[1], first[2] + 1), *rest))
        return Cart((*self.lines, _line(rng)))

    def request(self, order_id: str, request_id: str) -> api.CreateSessionRequest:
        return api.CreateSessionRequest(
            order_id=order_id,
            request_id=request_id,
            mode=pb.Session.PAYMENT,
            ui_mode=pb.Session.HOSTED_PAGE,
            currency="usd",
            line_items=[
                api.CreateSessionRequest.LineItem(
                    price_data=api.CreateSessionRequest.PriceData(
                        unit_amount=amount, product_name=product
                    ),
                    quantity=quantity,
                )
                for product, amount, quantity in self.lines
            ],
            success_url="https://shop.example/done?cs={CHECKOUT_SESSION_ID}",
        )


def _line(rng: random.Random) -> tuple[str, int, int]:
    return (rng.choice(_PRODUCTS), rng.randrange(100, 5000), rng.randint(1, 3))


def new_cart(rng: random.Random) -> Cart:
    return Cart(tuple(_line(rng) for _ in range(rng.randint(1, 3))))


class Load:
    def __init__(
        self,
        scenario: Scenario,
        cluster: Cluster,
        sandbox: SandboxControl,
        order_prefix: str,
        seed: int,
        trace: Path,
        callers: tuple[RunCaller, ...],
    ) -> None:
        self._trace_path = trace
        self._callers = callers
        self._caller_of: dict[str, RunCaller] = {}
        """Whose each order is: each worker's orders are one caller's."""
        self._trace: TextIO | None = None
        self._scenario = scenario
        self._cluster = cluster
        self._sandbox = sandbox
        self._prefix = order_prefix
        self._seed = seed
        self.tally = Tally()
        self._next_order = 0

    async def run(self, until: float) -> None:
        """Keep `workers` orders in flight until the monotonic time `until` (or `max_orders`);
        an order under way when time is up is finished, not abandoned."""
        with self._trace_path.open("a", encoding="utf-8") as trace:
            self._trace = trace
            try:
                async with asyncio.TaskGroup() as group:
                    for index in range(self._scenario.workers):
                        group.create_task(self._worker(index, until))
            finally:
                self._trace = None

    async def _worker(self, index: int, until: float) -> None:
        rng = random.Random(self._seed * 1000 + index)
        while time.monotonic() < until and self._next_order < self._scenario.max_orders:
            self._next_order += 1
            order_id = f"{self._prefix}{self._next_order:05d}"
            self._caller_of[order_id] = self._callers[index % len(self._callers)]
            self.tally.orders += 1
            await self._order(order_id, rng)

    async def _order(self, order_id: str, rng: random.Random) -> None:
        """An order's life: a cart, maybe the same cart again (reused), maybe a changed cart
        (the old session superseded), maybe two carts at once from two places (a race), then
        paid, abandoned (expired) or left open."""
        cart = new_cart(rng)
        session = await self._create(order_id, cart, rng)
        if rng.random() < 0.3:
            await self._think(rng)
            session = await self._create(order_id, cart, rng) or session
        if rng.random() < 0.5:
            await self._think(rng)
            cart = cart.changed(rng)
            session = await self._create(order_id, cart, rng) or session
        if rng.random() < 0.2:
            await self._think(rng)
            first, second = cart.changed(rng), cart.changed(rng).changed(rng)
            raced = await asyncio.gather(
                self._create(order_id, first, rng), self._create(order_id, second, rng)
            )
            session = next((s for s in reversed(raced) if s is not None), session)
        await self._think(rng)
        ending = rng.random()
        if ending < 0.3:
            await self._pay(order_id, session, cart, rng)
        elif ending < 0.4:
            # The customer pays while the order service changes the cart: one of the two must
            # lose (the payment refused, or the new cart refused as paid), never both win.
            await asyncio.gather(
                self._pay(order_id, session, cart, rng, then_change=False),
                self._create(order_id, cart.changed(rng), rng),
            )
        elif ending < 0.55:
            await self._expire(order_id, rng)
        elif ending < 0.6:
            # Abandoned on one replica while a new cart arrives on another.
            await asyncio.gather(
                self._expire(order_id, rng), self._create(order_id, cart.changed(rng), rng)
            )
        if self._scenario.stubborn_customers:
            await self._pay_every_link(order_id, rng)

    async def _pay_every_link(self, order_id: str, rng: random.Random) -> None:
        """The customer pays each session they were given a link to, in any order: every one
        but the order's payable session must be refused (expired, or the order paid)."""
        links = list(dict.fromkeys(self.tally.told.get(order_id, ())))
        rng.shuffle(links)
        for session_id in links:
            await self._think(rng)
            if await self._sandbox.pay(session_id):
                self.tally.stubborn_payments += 1

    async def _pay(
        self,
        order_id: str,
        session: pb.Session | None,
        cart: Cart,
        rng: random.Random,
        *,
        then_change: bool = True,
    ) -> None:
        if session is None or session.status != pb.Session.OPEN:
            return
        if not await self._sandbox.pay(session.id):
            self.tally.payments_refused += 1
            return
        self.tally.payments += 1
        if then_change and rng.random() < 0.5:
            # A cart changed after payment must be refused, never given a session.
            await self._think(rng)
            await self._create(order_id, cart.changed(rng), rng, after_payment=True)
        if rng.random() < 0.5 and session.HasField("amount_total"):
            await self._think(rng)
            await self._refunds(order_id, session.amount_total, rng)

    async def _refunds(self, order_id: str, paid: int, rng: random.Random) -> None:
        """Two to four partial refunds at once, each sent first to another replica, asking
        together for up to twice what was paid."""
        self.tally.refunded_orders += 1
        amounts = [max(1, rng.randint(paid // 4, paid // 2)) for _ in range(rng.randint(2, 4))]
        await asyncio.gather(
            *(self._refund(order_id, amount, rng, first=i) for i, amount in enumerate(amounts))
        )

    async def _refund(self, order_id: str, amount: int, rng: random.Random, *, first: int) -> None:
        request = api.RefundPaymentRequest(
            order_id=order_id, request_id=str(uuid.uuid4()), amount=amount
        )
        answer, code = await self._call(
            REFUND,
            order_id,
            rng,
            lambda stub, timeout, metadata: stub.RefundPayment(
                request, timeout=timeout, metadata=metadata
            ),
            first=first,
        )
        self.tally.refunds.append(
            ToldRefund(
                order_id,
                request.request_id,
                amount,
                code.name,
                "" if answer is None else answer.refund.id,
            )
        )

    async def _think(self, rng: random.Random) -> None:
        await asyncio.sleep(rng.uniform(*self._scenario.think_seconds))

    async def _create(
        self, order_id: str, cart: Cart, rng: random.Random, *, after_payment: bool = False
    ) -> pb.Session | None:
        request = cart.request(order_id, request_id=str(uuid.uuid4()))
        answer, code = await self._call(
            CREATE,
            order_id,
            rng,
            lambda stub, timeout, metadata: stub.CreateSession(
                request, timeout=timeout, metadata=metadata
            ),
        )
        if after_payment and code == grpc.StatusCode.FAILED_PRECONDITION:
            self.tally.paid_then_refused += 1
        elif after_payment and code == grpc.StatusCode.OK:
            self.tally.paid_then_created += 1
        if answer is None:
            return None
        if answer.reused:
            self.tally.reused += 1
        self.tally.told.setdefault(order_id, []).append(answer.session.id)
        return answer.session

    async def _expire(self, order_id: str, rng: random.Random) -> None:
        request = api.ExpireSessionRequest(order_id=order_id)
        await self._call(
            EXPIRE,
            order_id,
            rng,
            lambda stub, timeout, metadata: stub.ExpireSession(
                request, timeout=timeout, metadata=metadata
            ),
        )

    async def _call(
        self,
        method: str,
        order_id: str,
        rng: random.Random,
        invoke: Callable[[Stub, float, Metadata], Awaitable[T]],
        *,
        first: int | None = None,
    ) -> tuple[T | None, grpc.StatusCode]:
        """One request, retried as a good caller retries it: its answer (None if it ended in
        an error) and its final code. `first`: the first attempt goes to that replica in turn
        (Cluster.nth), the retries wherever the balancer picks."""
        label = uuid.uuid4().hex[:8]
        last_replica = ""
        code = grpc.StatusCode.UNAVAILABLE
        for attempt in range(1, self._scenario.attempts + 1):
            if attempt == 1 and first is not None:
                target = self._cluster.nth(first)
            else:
                target = self._cluster.pick(rng, avoid=last_replica)
            if target is None:  # every replica down at once: wait for one
                await asyncio.sleep(_FIRST_BACKOFF_SECONDS)
                continue
            last_replica = target.name
            x_request_id = f"{order_id}/{label}/{attempt}"
            try:
                answer = await invoke(
                    target.stub,
                    self._scenario.deadline_seconds,
                    # The replica logs it with every line of the call.
                    (("x-request-id", x_request_id), *self._caller_of[order_id].metadata),
                )
            except grpc.aio.AioRpcError as error:
                code = error.code()
                reason = _reason(error)
                self._log(x_request_id, target.name, method, code.name, reason)
                self.tally.answers[(method, code.name)] += 1
                self.tally.reasons[(code.name, reason)] += 1
                if code in BUGS:
                    self.tally.oddities.append(
                        Oddity(
                            order_id,
                            method,
                            x_request_id,
                            target.name,
                            code.name,
                            str(error.details()),
                        )
                    )
                if code not in RETRYABLE:
                    break
                await asyncio.sleep(_backoff(error, attempt, rng))
                continue
            session = getattr(answer, "session", None)
            self._log(x_request_id, target.name, method, "OK", getattr(session, "id", ""))
            self.tally.answers[(method, "OK")] += 1
            self.tally.final[(method, "OK")] += 1
            return answer, grpc.StatusCode.OK
        self.tally.final[(method, code.name)] += 1
        return None, code

    def _log(self, x_request_id: str, replica: str, method: str, code: str, what: str) -> None:
        """One line per answer in calls.jsonl: with the replicas' logs (which carry the same
        x-request-id) and the ledger dump, the story of any order."""
        if self._trace is not None:
            line = {
                "t": datetime.now(UTC).isoformat(),
                "call": x_request_id,
                "replica": replica,
                "method": method,
                "code": code,
                "detail": what,
            }
            self._trace.write(json.dumps(line) + "\n")


def _backoff(error: grpc.aio.AioRpcError, attempt: int, rng: random.Random) -> float:
    """The server's RetryInfo delay, roughly (with jitter, so that callers do not return in
    step), else exponential backoff with full jitter."""
    delay = _retry_delay(error)
    if delay is not None:
        return min(delay, _MAX_RETRY_INFO_SECONDS) * rng.uniform(0.8, 1.2)
    return rng.uniform(0, min(_FIRST_BACKOFF_SECONDS * 2**attempt, _MAX_BACKOFF_SECONDS))


def _status(error: grpc.aio.AioRpcError) -> list[object]:
    try:
        status = rpc_status.from_call(error)  # type: ignore[arg-type]
    except ValueError:
        return []
    return [] if status is None else list(status.details)


def _retry_delay(error: grpc.aio.AioRpcError) -> float | None:
    for detail in _status(error):
        info = error_details_pb2.RetryInfo()
        if detail.Unpack(info):  # type: ignore[attr-defined]
            return float(info.retry_delay.seconds + info.retry_delay.nanos / 1e9)
    return None


def _reason(error: grpc.aio.AioRpcError) -> str:
    info = error_info(error)
    return "-" if info is None else str(info.reason)


def error_info(error: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo | None:
    """The error's google.rpc.ErrorInfo, if it carries one."""
    for detail in _status(error):
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):  # type: ignore[attr-defined]
            return info
    return None

"""Signed webhook delivery: drains the event outbox (`events.py`) to the endpoints' URLs.

Each owed delivery (one event to one endpoint) runs in its own background task, so a request that
causes an event never waits for a receiver. An attempt POSTs the event as JSON, signed in the
`Stripe-Signature` header with every secret the endpoint has in force (`webhook_signing.py`),
which is what `stripe.Webhook.construct_event` verifies. A 2xx answer delivers it; anything else
(a redirect too: Stripe does not follow them), a connection error or the per-attempt timeout is
retried on Stripe's schedule, on the sandbox clock, until it is given up after three days; an
endpoint that failed all that time is disabled (`webhook_schedule.py`).

Every attempt is recorded for `GET /_sandbox/webhook_deliveries`, beside the deliveries still
owed and when each is next due. Pausing holds every delivery before its next attempt, and events
keep queueing; resuming sends them. A delivery to an endpoint that has since been deleted or
disabled is dropped, as Stripe does not send to those.
"""

import asyncio
import contextlib
import functools
import json
import logging
from typing import Any

import aiohttp

from .clock import Clock
from .events import EVENT, OUTBOX
from .store import Store
from .webhook_endpoints import WEBHOOK_ENDPOINT
from .webhook_schedule import Delivery, RetryPolicy
from .webhook_signing import secrets_in_force, signature_header

_log = logging.getLogger(__name__)

# Real Stripe sends this User-Agent; receivers that log it can tell the sandbox's deliveries apart
# by nothing else, which is the point.
_USER_AGENT = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"
# Attachment keyed by endpoint id: since when (sandbox clock) every attempt to it has failed.
FAILING_SINCE = "webhook_endpoint.failing_since"


class Webhooks:
    def __init__(self, store: Store, clock: Clock, policy: RetryPolicy) -> None:
        self.policy = policy
        self.attempts: list[dict[str, Any]] = []
        """Every attempt since the last reset, oldest first."""
        self._store = store
        self._clock = clock
        self._tasks: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._running = asyncio.Event()
        self._running.set()
        self._tick = asyncio.Event()
        self._http: aiohttp.ClientSession | None = None

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def pending(self) -> int:
        """Deliveries still owed: queued, waiting to retry, or in flight."""
        return sum(len(owed) for owed in self._store.attachments.get(OUTBOX, {}).values())

    def scheduled(self) -> list[dict[str, Any]]:
        """Each delivery still owed: its event and endpoint, attempts so far, next one due."""
        return [
            {
                "event": event_id,
                "endpoint": endpoint_id,
                "attempts": delivery.attempts,
                "next_attempt_at": delivery.next_at,
            }
            for event_id, owed in self._store.attachments.get(OUTBOX, {}).items()
            for endpoint_id, value in owed.items()
            for delivery in [Delivery.load(value)]
        ]

    async def start(self) -> None:
        self._http = aiohttp.ClientSession()
        self.kick()

    async def stop(self) -> None:
        tasks = list(self._tasks.values())
        self._cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.close()
            self._http = None

    def kick(self) -> None:
        """Start a task for every owed delivery that has none; call after anything may emit."""
        if self._http is None:
            return
        for event_id, owed in list(self._store.attachments.get(OUTBOX, {}).items()):
            for endpoint_id in owed:
                key = (event_id, endpoint_id)
                if key not in self._tasks:
                    task = asyncio.create_task(self._deliver(event_id, endpoint_id))
                    self._tasks[key] = task
                    task.add_done_callback(functools.partial(self._forget, key))

    def clock_moved(self) -> None:
        """The sandbox clock jumped: retries now due go at once."""
        self._tick.set()
        self._tick = asyncio.Event()

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def reset(self) -> None:
        """Forget every delivery and attempt (the store is being emptied) and resume."""
        self._cancel()
        self.attempts.clear()
        self.resume()

    def _cancel(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        self._tasks.clear()

    def _forget(self, key: tuple[str, str], task: asyncio.Task[None]) -> None:
        # After a reset a new delivery may hold the key; only remove this one.
        if self._tasks.get(key) is task:
            del self._tasks[key]
        if not task.cancelled() and task.exception() is not None:
            _log.error("webhook delivery %s failed", key, exc_info=task.exception())

    async def _deliver(self, event_id: str, endpoint_id: str) -> None:
        while True:
            await self._running.wait()
            owed = self._store.attached(OUTBOX, event_id)
            endpoint = self._store.get(WEBHOOK_ENDPOINT, endpoint_id)
            if owed is None or endpoint_id not in owed:
                return
            if endpoint is None or endpoint["status"] != "enabled":
                self._settle(event_id, endpoint_id)
                await self._store.flush()
                return
            delivery = Delivery.load(owed[endpoint_id])
            if delivery.next_at is not None and self._clock.time() < delivery.next_at:
                await self._until(delivery.next_at)
                continue
            finished = await self._attempt(event_id, endpoint, delivery)
            await self._store.flush()
            if finished:
                return

    async def _until(self, due: float) -> None:
        """Wait until the sandbox clock reaches `due`, or it jumps, or delivery is paused."""
        tick = self._tick
        remaining = due - self._clock.time()
        if remaining > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(tick.wait(), timeout=remaining)

    async def _attempt(self, event_id: str, endpoint: dict[str, Any], delivery: Delivery) -> bool:
        """One attempt, recorded; returns whether the delivery is finished."""
        endpoint_id = endpoint["id"]
        attempt = delivery.attempts + 1
        event = self._store.get(EVENT, event_id)
        started = self._clock.time()
        first_at = delivery.first_at if delivery.first_at is not None else started
        status, error = await self._post(event, endpoint["url"], endpoint_id)
        delivered = status is not None and 200 <= status < 300
        self.attempts.append(
            {
                "event": event_id,
                "type": event["type"],
                "endpoint": endpoint_id,
                "url": endpoint["url"],
                "attempt": attempt,
                "status": status,
                "error": error,
                "delivered": delivered,
            }
        )
        if delivered:
            event["pending_webhooks"] -= 1
            self._store.replace(EVENT, event_id, event)
            self._store.detach(FAILING_SINCE, endpoint_id)
            self._settle(event_id, endpoint_id)
            return True
        failing_since = self._store.attached(FAILING_SINCE, endpoint_id)
        if failing_since is None:
            failing_since = started
            self._store.attach(FAILING_SINCE, endpoint_id, started)
        next_at = self.policy.next_attempt(attempt, first_at, self._clock.time())
        if next_at is None:
            if not self.policy.capped(attempt) and failing_since <= first_at:
                self._disable(endpoint)
            self._settle(event_id, endpoint_id)
            return True
        owed = self._store.attached(OUTBOX, event_id)
        owed[endpoint_id] = Delivery(attempt, first_at, next_at).dump()
        self._store.attach(OUTBOX, event_id, owed)
        return False

    def _disable(self, endpoint: dict[str, Any]) -> None:
        """Three days of failures: Stripe disables the endpoint, as its `status` shows."""
        endpoint["status"] = "disabled"
        self._store.replace(WEBHOOK_ENDPOINT, endpoint["id"], endpoint)
        self._store.detach(FAILING_SINCE, endpoint["id"])
        _log.warning("webhook endpoint %s disabled after failing for days", endpoint["id"])

    async def _post(
        self, event: dict[str, Any], url: str, endpoint_id: str
    ) -> tuple[int | None, str | None]:
        """One attempt: the HTTP status, or None and what went wrong."""
        assert self._http is not None
        # Stripe's bodies are indented JSON; a receiver must verify the bytes, not re-encode.
        payload = json.dumps(event, indent=2)
        now = self._clock.now()
        secrets = secrets_in_force(self._store, endpoint_id, now)
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": signature_header(payload, secrets, now),
            "User-Agent": _USER_AGENT,
        }
        try:
            async with self._http.post(
                url,
                data=payload.encode(),
                headers=headers,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=self.policy.timeout),
            ) as response:
                await response.read()
                return response.status, None
        except TimeoutError:
            return None, f"timed out after {self.policy.timeout:g} s"
        except aiohttp.ClientError as error:
            return None, f"{type(error).__name__}: {error}"

    def _settle(self, event_id: str, endpoint_id: str) -> None:
        """Take a delivery out of the outbox: delivered, given up on, or no longer wanted."""
        owed = self._store.attached(OUTBOX, event_id)
        del owed[endpoint_id]
        if owed:
            self._store.attach(OUTBOX, event_id, owed)
        else:
            self._store.detach(OUTBOX, event_id)

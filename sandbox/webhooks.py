"""Signed webhook delivery: drains the event outbox (`events.py`) to the endpoints' URLs.

Each owed delivery (one event to one endpoint) runs in its own background task, so a request that
causes an event never waits for a receiver. An attempt POSTs the event as JSON with the header
`Stripe-Signature: t=<sandbox clock>,v1=<hex HMAC-SHA256 of "{t}.{body}" with the endpoint's
secret>`, which is what `stripe.Webhook.construct_event` verifies. A 2xx answer delivers it;
anything else (a redirect too: Stripe does not follow them), a connection error or the
per-attempt timeout is retried after `first_delay`, then twice that, and so on, up to `attempts`
attempts in all. Live Stripe retries for three days; the default schedule here (0.5 s doubling,
8 attempts, about a minute) keeps tests short.

Every attempt is recorded for `GET /_sandbox/webhook_deliveries`. Pausing holds every delivery
before its next attempt, and events keep queueing; resuming sends them. A delivery to an endpoint
that has since been deleted or disabled is dropped, as Stripe does not send to those.
"""

import asyncio
import functools
import hashlib
import hmac
import json
import logging
from dataclasses import dataclass
from typing import Any

import aiohttp

from .clock import Clock
from .events import EVENT, OUTBOX
from .store import Store
from .webhook_endpoints import SECRET, WEBHOOK_ENDPOINT

_log = logging.getLogger(__name__)

# Real Stripe sends this User-Agent; receivers that log it can tell the sandbox's deliveries apart
# by nothing else, which is the point.
_USER_AGENT = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"


@dataclass(frozen=True)
class RetryPolicy:
    first_delay: float = 0.5
    """Seconds before the second attempt; each later wait doubles."""
    attempts: int = 8
    timeout: float = 10.0
    """Seconds one attempt may take, connecting included."""

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        return float(self.first_delay * 2 ** (attempt - 1))


def signature_header(payload: str, secret: str, timestamp: int) -> str:
    signed = f"{timestamp}.{payload}".encode()
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


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
        self._http: aiohttp.ClientSession | None = None

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def pending(self) -> int:
        """Deliveries still owed: queued, waiting to retry, or in flight."""
        return sum(len(owed) for owed in self._store.attachments.get(OUTBOX, {}).values())

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
            attempt = owed[endpoint_id] + 1
            event = self._store.get(EVENT, event_id)
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
            finished = delivered or attempt >= self.policy.attempts
            if finished:
                self._settle(event_id, endpoint_id)
            else:
                owed[endpoint_id] = attempt
                self._store.attach(OUTBOX, event_id, owed)
            await self._store.flush()
            if finished:
                return
            await asyncio.sleep(self.policy.delay(attempt))

    async def _post(
        self, event: dict[str, Any], url: str, endpoint_id: str
    ) -> tuple[int | None, str | None]:
        """One attempt: the HTTP status, or None and what went wrong."""
        assert self._http is not None
        # Stripe's bodies are indented JSON; a receiver must verify the bytes, not re-encode.
        payload = json.dumps(event, indent=2)
        secret = self._store.attached(SECRET, endpoint_id)
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": signature_header(payload, secret, self._clock.now()),
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

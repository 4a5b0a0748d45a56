"""The Stripe sandbox as a process of the run's own, its control API (faults, payments, webhook
deliveries), and the stripe-python client the run reads Stripe's side through."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import stripe

from sandbox.launcher import SandboxProcess as Running
from sandbox.launcher import start_sandbox

API_KEY = "sk_test_chaos"
# A failed webhook delivery is retried after 1 s, doubling: a replica that was down for a few
# seconds gets its events again within the run, not after Stripe's first minute.
WEBHOOK_OPTIONS = ("--webhook-retry-delay", "1", "--webhook-timeout", "3")


@dataclass
class SandboxProcess:
    """The run's sandbox, its log in the run's log folder."""

    running: Running

    @property
    def url(self) -> str:
        return self.running.url

    @classmethod
    async def start(cls, log_dir: Path) -> SandboxProcess:
        running = await asyncio.to_thread(
            start_sandbox, "--port", "0", *WEBHOOK_OPTIONS, log=log_dir / "sandbox.log"
        )
        return cls(running)

    async def stop(self) -> None:
        await asyncio.to_thread(self.running.stop, 10)


class SandboxControl:
    """`/_sandbox/…` over HTTP, and Stripe's API through stripe-python (as the service calls
    it), for what the run does and checks at the sandbox."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._http = httpx.AsyncClient(base_url=url, timeout=30)
        self._stripe_http = stripe.HTTPXClient()
        self.stripe = stripe.StripeClient(
            API_KEY, base_addresses={"api": url}, http_client=self._stripe_http
        )

    async def close(self) -> None:
        await self._http.aclose()
        await self._stripe_http.close_async()  # type: ignore[no-untyped-call]

    async def add_fault(self, fault: dict[str, Any]) -> httpx.Response:
        return await self._http.post("/_sandbox/faults", json=fault)

    async def faults(self) -> list[dict[str, Any]]:
        answer = await self._http.get("/_sandbox/faults")
        answer.raise_for_status()
        return list(answer.json()["faults"])

    async def clear_faults(self) -> None:
        (await self._http.delete("/_sandbox/faults")).raise_for_status()

    async def supports_phase(self, phase: str) -> bool:
        """Whether this sandbox knows a fault phase (`during` is newer than the others): a
        fault on a path no request takes, added and cleared before the run injects any."""
        answer = await self.add_fault(
            {"path_prefix": "/_chaos/probe", "status": 500, "phase": phase, "count": 1}
        )
        await self.clear_faults()
        return answer.status_code == 200

    async def pay(self, session_id: str) -> bool:
        """The customer pays on the hosted page; False if the sandbox refuses (the session is
        no longer open: superseded or expired meanwhile)."""
        answer = await self._http.post(
            f"/_sandbox/checkout/sessions/{session_id}/pay", data={"payment_status": "paid"}
        )
        if answer.status_code >= 500:
            answer.raise_for_status()
        return answer.status_code == 200

    async def deliveries(self) -> dict[str, Any]:
        answer = await self._http.get("/_sandbox/webhook_deliveries")
        answer.raise_for_status()
        return dict(answer.json())

    async def stats(self) -> dict[str, Any]:
        answer = await self._http.get("/_sandbox/stats")
        answer.raise_for_status()
        return dict(answer.json())

    async def create_webhook_endpoint(self, url: str, events: list[Any]) -> tuple[str, str]:
        """A new endpoint's id and signing secret (Stripe shows the secret only now)."""
        endpoint = await self.stripe.v1.webhook_endpoints.create_async(
            {"url": url, "enabled_events": events}
        )
        assert endpoint.secret is not None
        return endpoint.id, endpoint.secret

    async def point_webhook_endpoint(self, endpoint_id: str, url: str) -> None:
        await self.stripe.v1.webhook_endpoints.update_async(endpoint_id, {"url": url})

    async def sessions(self) -> list[stripe.checkout.Session]:
        """Every Checkout Session at the sandbox, all pages."""
        page = await self.stripe.v1.checkout.sessions.list_async({"limit": 100})
        return [session async for session in page.auto_paging_iter()]

"""Stripe's webhook signatures, verified on the raw bytes with stripe-python
(https://docs.stripe.com/webhooks#verify-events): HMAC-SHA256 of `{t}.{body}` with the
endpoint's secret, and a timestamp no older than the tolerance."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import stripe

from service.domain.errors import BadSignature
from service.domain.model import ORDER_ID_KEY, StripeEvent

SESSION_OBJECT = "checkout.session"


class StripeWebhookVerifier:
    """`secrets`: the endpoint's signing secret, or two while it is rolled (Stripe signs with
    both until the old one expires: https://docs.stripe.com/webhooks#roll-endpoint-secrets)."""

    def __init__(self, secrets: Sequence[str], *, tolerance_seconds: int = 300) -> None:
        if not secrets:
            raise ValueError("at least one webhook signing secret is needed")
        self._secrets = tuple(secrets)
        self._tolerance = tolerance_seconds

    def verify(self, payload: bytes, signature_header: str) -> StripeEvent | None:
        event = None
        for secret in self._secrets:
            try:
                event = stripe.Webhook.construct_event(
                    payload, signature_header, secret, self._tolerance
                )
                break
            except stripe.SignatureVerificationError as exc:
                # Its message says what was wrong (no header, stale, no match), never a secret.
                failure = BadSignature(str(exc.user_message or exc))
                failure.__cause__ = exc
            except ValueError as exc:
                raise BadSignature("the signed payload is not a Stripe event") from exc
        if event is None:
            raise failure
        return event_from_stripe(event.to_dict())


def event_from_stripe(data: Mapping[str, Any]) -> StripeEvent | None:
    """A Stripe event about a Checkout Session as the domain's StripeEvent; None for others."""
    session = data.get("data", {}).get("object", {})
    if session.get("object") != SESSION_OBJECT:
        return None
    metadata = session.get("metadata") or {}
    return StripeEvent(
        id=data["id"],
        type=data["type"],
        session_id=session["id"],
        order_id=metadata.get(ORDER_ID_KEY),
        created=int(data.get("created") or 0),
    )

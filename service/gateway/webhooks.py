"""Stripe's webhook signatures, verified on the raw bytes with stripe-python
(https://docs.stripe.com/webhooks#verify-events): HMAC-SHA256 of `{t}.{body}` with the
endpoint's secret, and a timestamp no older than the tolerance."""

from __future__ import annotations

from typing import Any

import stripe

from service.domain.errors import BadSignature
from service.domain.model import StripeEvent

SESSION_OBJECT = "checkout.session"
ORDER_ID_KEY = "order_id"


class StripeWebhookVerifier:
    def __init__(self, secret: str, *, tolerance_seconds: int = 300) -> None:
        self._secret = secret
        self._tolerance = tolerance_seconds

    def verify(self, payload: bytes, signature_header: str) -> StripeEvent | None:
        try:
            event = stripe.Webhook.construct_event(
                payload, signature_header, self._secret, self._tolerance
            )
        except stripe.SignatureVerificationError as exc:
            # Its message says what was wrong (no header, stale, no match), never the secret.
            raise BadSignature(str(exc.user_message or exc)) from exc
        except ValueError as exc:
            raise BadSignature("the signed payload is not a Stripe event") from exc
        data: dict[str, Any] = event.to_dict()
        session = data.get("data", {}).get("object", {})
        if session.get("object") != SESSION_OBJECT:
            return None
        metadata = session.get("metadata") or {}
        return StripeEvent(
            id=data["id"],
            type=data["type"],
            session_id=session["id"],
            order_id=metadata.get(ORDER_ID_KEY),
        )

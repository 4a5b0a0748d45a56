"""Stripe's webhook signatures, verified on the raw bytes with stripe-python
(https://docs.stripe.com/webhooks#verify-events): HMAC-SHA256 of `{t}.{body}` with the
endpoint's secret, and a timestamp no further from now than the tolerance, either way:
stripe-python refuses one too old, and a signature dated ahead is refused here (a replay
protection that a clock could be talked out of is none)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import stripe

from service.domain.errors import BadSignature
from service.domain.model import CALLER_KEY, ORDER_ID_KEY, StripeEvent
from service.domain.payment_model import PaymentEvent

SESSION_OBJECT = "checkout.session"
_INTENT_OBJECT = "payment_intent"
_PAYMENT_OBJECTS = frozenset({_INTENT_OBJECT, "charge", "refund", "dispute"})


class StripeWebhookVerifier:
    """`secrets`: the endpoint's signing secret, or two while it is rolled (Stripe signs with
    both until the old one expires: https://docs.stripe.com/webhooks#roll-endpoint-secrets)."""

    def __init__(
        self,
        secrets: Sequence[str],
        *,
        tolerance_seconds: int = 300,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not secrets:
            raise ValueError("at least one webhook signing secret is needed")
        self._secrets = tuple(secrets)
        self._tolerance = tolerance_seconds
        self._clock = clock

    def verify(self, payload: bytes, signature_header: str) -> StripeEvent | PaymentEvent | None:
        event = None
        for secret in self._secrets:
            try:
                event = stripe.Webhook.construct_event(
                    payload, signature_header, secret, self._tolerance
                ).to_dict()
                break
            except stripe.SignatureVerificationError as exc:
                # Its message says what was wrong (no header, stale, no match), never a secret.
                failure = BadSignature(str(exc.user_message or exc))
                failure.__cause__ = exc
            except (ValueError, RecursionError) as exc:
                # Signed, but not JSON, or JSON nested too deep to read: not an event.
                raise BadSignature("the signed payload is not a Stripe event") from exc
        if event is None:
            raise failure
        if _timestamp(signature_header) > self._clock() + self._tolerance:
            raise BadSignature("the signature's timestamp is in the future")
        return event_from_stripe(event)


def _timestamp(signature_header: str) -> int:
    """The `t=` of a header stripe-python has just verified (read as it reads it), so there is
    one, and it is a number."""
    for item in signature_header.split(","):
        key, _, value = item.partition("=")
        if key == "t":
            return int(value.partition("=")[0])
    raise BadSignature("the Stripe-Signature header has no timestamp")


def event_from_stripe(data: Mapping[str, Any]) -> StripeEvent | PaymentEvent | None:
    """A Stripe event about a Checkout Session as the domain's StripeEvent, one about a payment
    after checkout as a PaymentEvent; None for others."""
    session = data.get("data", {}).get("object", {})
    if session.get("object") in _PAYMENT_OBJECTS:
        return _payment_event(data, session)
    if session.get("object") != SESSION_OBJECT:
        return None
    metadata = session.get("metadata") or {}
    return StripeEvent(
        id=data["id"],
        type=data["type"],
        session_id=session["id"],
        order_id=metadata.get(ORDER_ID_KEY),
        created=int(data.get("created") or 0),
        recovered_from=session.get("recovered_from"),
        caller=metadata.get(CALLER_KEY),
    )


def _payment_event(data: Mapping[str, Any], subject: Mapping[str, Any]) -> PaymentEvent | None:
    """An event about a PaymentIntent, or a charge, refund or dispute of one (each names its
    PaymentIntent); None for one of a charge no PaymentIntent made."""
    kind = subject["object"]
    intent = subject.get("id") if kind == _INTENT_OBJECT else subject.get("payment_intent")
    if isinstance(intent, Mapping):
        intent = intent.get("id")
    if not isinstance(intent, str):
        return None
    # The PaymentIntent and its charge carry the order id the service gave the session's
    # payment_intent_data; refunds and disputes do not.
    carries = kind in (_INTENT_OBJECT, "charge")
    metadata = (subject.get("metadata") or {}) if carries else {}
    return PaymentEvent(
        id=data["id"],
        type=data["type"],
        payment_intent_id=intent,
        order_id=metadata.get(ORDER_ID_KEY),
        created=int(data.get("created") or 0),
        carries_metadata=carries,
    )

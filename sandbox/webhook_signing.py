"""The `Stripe-Signature` header, and rolling an endpoint's signing secret.

The header is `t=<sandbox clock>,v1=<hex HMAC-SHA256 of "{t}.{body}" with a secret>`, with one
`v1` for each secret the endpoint has in force (https://docs.stripe.com/webhooks#verify-manually).
Rolling a secret, as the Dashboard's "Roll secret" does
(https://docs.stripe.com/webhooks#roll-endpoint-secrets), makes a new one at once and keeps the
old one for `expires_in` seconds (0: not at all, at most 7 days): until then every event carries
two `v1` signatures, the new secret's first, so a receiver that knows either secret verifies it.
`stripe.Webhook.construct_event` accepts a header when any of its `v1` signatures matches.

Control route: `POST /_sandbox/webhook_endpoints/{webhook_endpoint}/roll_secret`
(`expires_in`, default 0) answers `{"id", "secret", "previous_secret_expires_at"}`; as on
Stripe, the new secret is shown there only.
"""

import hashlib
import hmac
from typing import Any

from .errors import resource_missing
from .params import Integer, hash_of
from .store import Store, new_id
from .webhook_endpoints import SECRET, WEBHOOK_ENDPOINT

# Attachment keyed by endpoint id: the secrets rolled away, each with when it stops signing.
PREVIOUS_SECRETS = "webhook_endpoint.previous_secrets"
MAX_EXPIRY = 7 * 24 * 60 * 60
ROLL_PARAMS = hash_of(expires_in=Integer(0, MAX_EXPIRY))


def signature_header(payload: str, secrets: list[str], timestamp: int) -> str:
    signed = f"{timestamp}.{payload}".encode()
    signatures = [
        "v1=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest() for secret in secrets
    ]
    return ",".join([f"t={timestamp}", *signatures])


def secrets_in_force(store: Store, endpoint_id: str, now: int) -> list[str]:
    """The endpoint's secret, then any rolled-away one that has not expired yet."""
    previous = store.attached(PREVIOUS_SECRETS, endpoint_id) or []
    current: str = store.attached(SECRET, endpoint_id)
    return [current, *(entry["secret"] for entry in previous if entry["expires_at"] > now)]


def roll_secret(store: Store, endpoint_id: str, now: int, raw: dict[str, Any]) -> dict[str, Any]:
    expires_in = ROLL_PARAMS.parse(raw).get("expires_in", 0)
    if store.get(WEBHOOK_ENDPOINT, endpoint_id) is None:
        raise resource_missing("webhook endpoint", endpoint_id, "webhook_endpoint", status=404)
    old: str = store.attached(SECRET, endpoint_id)
    kept = [e for e in store.attached(PREVIOUS_SECRETS, endpoint_id) or [] if e["expires_at"] > now]
    expires_at = now + expires_in
    if expires_in:
        kept.append({"secret": old, "expires_at": expires_at})
    secret = new_id("whsec_", 32)
    store.attach(SECRET, endpoint_id, secret)
    store.attach(PREVIOUS_SECRETS, endpoint_id, kept)
    return {
        "id": endpoint_id,
        "secret": secret,
        "previous_secret_expires_at": expires_at if expires_in else None,
    }

"""Recovering an abandoned cart: the recovery URL of an expired session and the new session it
makes (https://docs.stripe.com/payments/checkout/abandoned-carts).

A session created with `after_expiration[recovery][enabled]=true` gets, when it expires (at its
`expires_at`, or through the API), `after_expiration.recovery.url` and `.expires_at`: the URL
works for 30 days. Opening it (`GET /c/recover/{session}`) creates a new session that is a copy
of the expired one (its creation parameters again, with a new `expires_at` of 24 hours, and
`allow_promotion_codes` when the recovery allows them and the session has no `discounts`),
whose `recovered_from` names the expired one, and sends the customer to its page (303). Opening
it again while that copy is open leads to the same copy; once the copy is complete or expired,
to a new one. After 30 days the URL shows that it has expired (410).
"""

from typing import Any

from aiohttp import web

from .api import ApiRequest
from .checkout import CREATE_PARAMS, ORIGIN, RECOVERY_PATH, SESSION, create_session, expire_due
from .context import SANDBOX
from .store import new_id

# Attachment keyed by session id: the latest session its recovery URL created.
RECOVERED = "checkout.session.recovered"


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get(RECOVERY_PATH, _recover)


async def _recover(request: web.Request) -> web.Response:
    sandbox = request.app[SANDBOX]
    store, now = sandbox.store, sandbox.clock.now()
    expire_due(store, now)
    expired: dict[str, Any] | None = store.get(SESSION, request.match_info["session"])
    recovery = None if expired is None else (expired["after_expiration"] or {}).get("recovery")
    if expired is None or recovery is None or recovery["url"] is None:
        return web.Response(status=404, text="No such recovery link.")
    if recovery["expires_at"] <= now:
        return web.Response(status=410, text="This recovery link has expired.")
    earlier = store.attached(RECOVERED, expired["id"])
    copy = None if earlier is None else store.get(SESSION, earlier)
    if copy is None or copy["status"] != "open":
        raw = dict(store.attached(CREATE_PARAMS, expired["id"]))
        raw.pop("expires_at", None)
        if recovery["allow_promotion_codes"] and "discounts" not in raw:
            raw["allow_promotion_codes"] = "true"
        api = ApiRequest(
            params=raw,
            path={},
            store=store,
            clock=sandbox.clock,
            origin=store.attached(ORIGIN, expired["id"]),
            expanders={},
            request_id=new_id("req_", 14),
            idempotency_key=None,
        )
        copy = create_session(api, recovered_from=expired["id"])
        store.attach(RECOVERED, expired["id"], copy["id"])
    return web.Response(status=303, headers={"Location": copy["url"]})

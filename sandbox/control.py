"""The control API for tests, under `/_sandbox/` (no API key needed).

- `POST /_sandbox/faults` (JSON or form: `path_prefix`, `method`, `status`, `count`, `delay_ms`,
  `drop`, `phase`; see `faults.py`), `GET /_sandbox/faults`, `DELETE /_sandbox/faults`.
- `POST /_sandbox/reset`: forget every object, idempotency record, fault, count, webhook
  delivery and attempt, resume delivery, and set the clock back to real time.
- `POST /_sandbox/demo_catalog`: add the demo catalog (`demo_catalog.py`) to a running sandbox,
  as `--demo-catalog` does at start and after each reset; what is already there stays as is.
- `POST /_sandbox/clock/advance` (`seconds`): move the sandbox's clock forward, so sessions
  reach their `expires_at` (all that are due expire at once, each with its event), idempotency
  keys their 24 hours, webhook retries their turn (`webhook_schedule.py`), and authorisations
  and bank refunds their deadlines (`payment_deadlines.py`);
  `GET /_sandbox/clock` reads it.
- `POST /_sandbox/checkout/sessions/{session}/pay` (`payment_status` `paid` or `unpaid`,
  `email`, `name`, `line1`, `line2`, `city`, `state`, `postal_code`, `country`,
  `presentment_currency`; the card: `card_number` (a test card, `cards.py`; 4242… when absent),
  `three_d_secure` (`complete` or `fail`, the answer to a challenge), `payment_method` (a saved
  card) and `save_payment_method`; what the session collects: `phone`, `business_name`,
  `individual_name`, `tax_id[type]`, `tax_id[value]`, `custom_fields[KEY]`,
  `consent[terms_of_service]`, `consent[promotions]`, see `buyer_entries.py`; and the customer's
  choices: `promotion_code`, `line_items[N][quantity]`, `shipping_rate`, see
  `customer_choices.py`): the customer completes an open session (`completion.py`), with the
  hosted page's entries and refusals; a declined card or a failed challenge is a 402
  `card_error` and the session stays open;
  `POST /_sandbox/checkout/sessions/{session}/async_payment` (`outcome` `succeeded` or
  `failed`): its bank debit settles. Both answer with the session.
- `GET /_sandbox/webhook_deliveries`: every delivery attempt (event, type, endpoint, url,
  attempt, status or error, delivered), how many deliveries are still owed and when each is next
  due (`scheduled`), and whether delivery is paused; `POST /_sandbox/webhooks/pause` and
  `POST /_sandbox/webhooks/resume`.
- `POST /_sandbox/webhook_endpoints/{webhook_endpoint}/roll_secret` (`expires_in`): a new
  signing secret, the old one still signing until it expires (`webhook_signing.py`).
- `GET` and `POST /_sandbox/tax/settings` (`defaults[tax_behavior]`, `registrations`): the
  account's Tax settings (`tax_settings.py`).
- `GET` and `POST /_sandbox/restricted_keys` (`key`, `permissions`): what a restricted key may
  do (`restricted_keys.py`).
- `GET` and `POST /_sandbox/account/public_details` (`terms_of_service_url`): the account's
  public business details (`public_details.py`).
- The money after checkout (disputes, failed refunds): `payment_control.py`.
- `GET /_sandbox/stats`: requests by method and path, objects created (`created`,
  `sessions_created`: since the last reset, in this process) and stored (`objects`, `sessions`),
  idempotent replays and injected faults.
"""

import json
from typing import Any

from aiohttp import web

from . import demo_catalog as demo
from . import public_details, tax_settings
from .checkout import expire_due, find_session
from .completion import PAY_PARAMS, SETTLE_PARAMS, complete, settle
from .context import SANDBOX, Stats
from .errors import invalid
from .faults import FAULT_PARAMS
from .forms import decode
from .params import Integer, hash_of
from .payment_deadlines import run_due
from .restricted_keys import listed, set_permissions
from .webhook_signing import roll_secret

# The clock only moves forward: objects never see time run backwards.
_ADVANCE = hash_of("seconds", seconds=Integer(0))


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_post("/_sandbox/faults", _add_fault)
    router.add_get("/_sandbox/faults", _list_faults)
    router.add_delete("/_sandbox/faults", _clear_faults)
    router.add_post("/_sandbox/reset", _reset)
    router.add_post("/_sandbox/demo_catalog", _demo_catalog)
    router.add_post("/_sandbox/clock/advance", _advance_clock)
    router.add_get("/_sandbox/clock", _read_clock)
    router.add_get("/_sandbox/stats", _stats)
    router.add_post("/_sandbox/checkout/sessions/{session}/pay", _pay)
    router.add_post("/_sandbox/checkout/sessions/{session}/async_payment", _async_payment)
    router.add_get("/_sandbox/webhook_deliveries", _deliveries)
    router.add_post("/_sandbox/webhooks/pause", _pause)
    router.add_post("/_sandbox/webhooks/resume", _resume)
    router.add_post("/_sandbox/webhook_endpoints/{webhook_endpoint}/roll_secret", _roll_secret)
    router.add_get("/_sandbox/tax/settings", _tax_settings)
    router.add_post("/_sandbox/tax/settings", _update_tax_settings)
    router.add_get("/_sandbox/restricted_keys", _restricted_keys)
    router.add_get("/_sandbox/account/public_details", _public_details)
    router.add_post("/_sandbox/account/public_details", _update_public_details)
    router.add_post("/_sandbox/restricted_keys", _set_restricted_key)


async def _add_fault(request: web.Request) -> web.Response:
    body = await read_body(request)
    if isinstance(body.get("method"), str):
        # HTTP methods are case-insensitive to the people writing tests, if not to HTTP.
        body["method"] = body["method"].upper()
    params = FAULT_PARAMS.parse(body)
    fault = request.app[SANDBOX].faults.add(params)
    return web.json_response({"id": fault.id, "fault": request.app[SANDBOX].faults.describe()[-1]})


async def _list_faults(request: web.Request) -> web.Response:
    return web.json_response({"faults": request.app[SANDBOX].faults.describe()})


async def _clear_faults(request: web.Request) -> web.Response:
    request.app[SANDBOX].faults.clear()
    return web.json_response({"faults": []})


async def _reset(request: web.Request) -> web.Response:
    sandbox = request.app[SANDBOX]
    sandbox.store.reset()
    sandbox.faults.clear()
    sandbox.webhooks.reset()
    # With every object forgotten, nothing can see the clock go back to real time.
    sandbox.clock.offset = 0
    sandbox.stats = Stats()
    if sandbox.demo_catalog:
        demo.seed(sandbox.store, sandbox.clock.now())
    await sandbox.store.flush()
    return web.json_response({"reset": True})


async def _demo_catalog(request: web.Request) -> web.Response:
    sandbox = request.app[SANDBOX]
    demo.seed(sandbox.store, sandbox.clock.now())
    await sandbox.store.flush()
    return web.json_response({"demo_catalog": True})


async def _advance_clock(request: web.Request) -> web.Response:
    seconds = _ADVANCE.parse(await read_body(request))["seconds"]
    sandbox = request.app[SANDBOX]
    sandbox.clock.advance(seconds)
    expire_due(sandbox.store, sandbox.clock.now())
    run_due(sandbox.store, sandbox.clock.now())
    sandbox.webhooks.clock_moved()
    return await _read_clock(request)


async def _read_clock(request: web.Request) -> web.Response:
    clock = request.app[SANDBOX].clock
    return web.json_response({"now": clock.now(), "offset": clock.offset})


async def _stats(request: web.Request) -> web.Response:
    sandbox = request.app[SANDBOX]
    store, stats = sandbox.store, sandbox.stats
    return web.json_response(
        {
            "requests": dict(stats.requests),
            "routes": dict(stats.routes),
            "created": dict(store.created),
            "sessions_created": store.created["checkout.session"],
            "sessions": len(store.collections.get("checkout.session", {})),
            "objects": {kind: len(objects) for kind, objects in store.collections.items()},
            "idempotency_keys": len(store.idempotency),
            "idempotent_replays": stats.replays,
            "faults_applied": stats.faults,
        }
    )


async def _pay(request: web.Request) -> web.Response:
    details = PAY_PARAMS.parse(await read_body(request))
    sandbox = request.app[SANDBOX]
    now = sandbox.clock.now()
    session = find_session(sandbox.store, now, request.match_info["session"])
    complete(sandbox.store, now, session, details)
    return web.json_response(session)


async def _async_payment(request: web.Request) -> web.Response:
    outcome = SETTLE_PARAMS.parse(await read_body(request))["outcome"]
    sandbox = request.app[SANDBOX]
    now = sandbox.clock.now()
    session = find_session(sandbox.store, now, request.match_info["session"])
    settle(sandbox.store, now, session, outcome == "succeeded")
    return web.json_response(session)


async def _deliveries(request: web.Request) -> web.Response:
    webhooks = request.app[SANDBOX].webhooks
    return web.json_response(
        {
            "deliveries": webhooks.attempts,
            "pending": webhooks.pending(),
            "scheduled": webhooks.scheduled(),
            "paused": webhooks.paused,
        }
    )


async def _pause(request: web.Request) -> web.Response:
    request.app[SANDBOX].webhooks.pause()
    return await _deliveries(request)


async def _resume(request: web.Request) -> web.Response:
    request.app[SANDBOX].webhooks.resume()
    return await _deliveries(request)


async def _roll_secret(request: web.Request) -> web.Response:
    sandbox = request.app[SANDBOX]
    endpoint_id = request.match_info["webhook_endpoint"]
    rolled = roll_secret(sandbox.store, endpoint_id, sandbox.clock.now(), await read_body(request))
    return web.json_response(rolled)


async def _tax_settings(request: web.Request) -> web.Response:
    return web.json_response(tax_settings.settings(request.app[SANDBOX].store))


async def _update_tax_settings(request: web.Request) -> web.Response:
    store = request.app[SANDBOX].store
    return web.json_response(tax_settings.update(store, await read_body(request)))


async def _public_details(request: web.Request) -> web.Response:
    return web.json_response(public_details.public_details(request.app[SANDBOX].store))


async def _update_public_details(request: web.Request) -> web.Response:
    store = request.app[SANDBOX].store
    return web.json_response(public_details.update(store, await read_body(request)))


async def _restricted_keys(request: web.Request) -> web.Response:
    return web.json_response({"restricted_keys": listed(request.app[SANDBOX].store)})


async def _set_restricted_key(request: web.Request) -> web.Response:
    store = request.app[SANDBOX].store
    return web.json_response(set_permissions(store, await read_body(request)))


async def read_body(request: web.Request) -> dict[str, Any]:
    """Form bodies as in the Stripe API, or JSON, whose scalars become the strings a form sends."""
    text = await request.text()
    if request.content_type != "application/json":
        return decode(text)
    try:
        body = json.loads(text or "{}")
    except json.JSONDecodeError as error:
        raise invalid(f"Invalid JSON body: {error}") from error
    if not isinstance(body, dict):
        raise invalid("The JSON body must be an object.")
    return {name: _as_form(value) for name, value in body.items()}


def _as_form(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return {name: _as_form(item) for name, item in value.items()}
    if isinstance(value, list):
        return [_as_form(item) for item in value]
    return "" if value is None else str(value)

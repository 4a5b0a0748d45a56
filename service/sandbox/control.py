"""The control API for tests, under `/_sandbox/` (no API key needed).

- `POST /_sandbox/faults` (JSON or form: `path_prefix`, `method`, `status`, `count`, `delay_ms`,
  `drop`, `phase`; see `faults.py`), `GET /_sandbox/faults`, `DELETE /_sandbox/faults`.
- `POST /_sandbox/reset`: forget every object, idempotency record, fault and count, and set
  the clock back to real time.
- `POST /_sandbox/clock/advance` (`seconds`): move the sandbox's clock forward, so sessions
  reach their `expires_at` and idempotency keys their 24 hours; `GET /_sandbox/clock` reads it.
- `GET /_sandbox/stats`: requests by method and path, objects created (`created`,
  `sessions_created`: since the last reset, in this process) and stored (`objects`, `sessions`),
  idempotent replays and injected faults.
"""

import json
from typing import Any

from aiohttp import web

from .context import SANDBOX, Stats
from .errors import invalid
from .faults import FAULT_PARAMS
from .forms import decode
from .params import Integer, hash_of

# The clock only moves forward: objects never see time run backwards.
_ADVANCE = hash_of("seconds", seconds=Integer(0))


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_post("/_sandbox/faults", _add_fault)
    router.add_get("/_sandbox/faults", _list_faults)
    router.add_delete("/_sandbox/faults", _clear_faults)
    router.add_post("/_sandbox/reset", _reset)
    router.add_post("/_sandbox/clock/advance", _advance_clock)
    router.add_get("/_sandbox/clock", _read_clock)
    router.add_get("/_sandbox/stats", _stats)


async def _add_fault(request: web.Request) -> web.Response:
    body = await _body(request)
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
    # With every object forgotten, nothing can see the clock go back to real time.
    sandbox.clock.offset = 0
    sandbox.stats = Stats()
    await sandbox.store.flush()
    return web.json_response({"reset": True})


async def _advance_clock(request: web.Request) -> web.Response:
    seconds = _ADVANCE.parse(await _body(request))["seconds"]
    request.app[SANDBOX].clock.advance(seconds)
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


async def _body(request: web.Request) -> dict[str, Any]:
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

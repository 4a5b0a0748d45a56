"""The control API for tests, under `/_sandbox/` (no API key needed).

- `POST /_sandbox/faults` (JSON or form: `path_prefix`, `method`, `status`, `count`, `delay_ms`,
  `drop`, `phase`; see `faults.py`), `GET /_sandbox/faults`, `DELETE /_sandbox/faults`.
- `POST /_sandbox/reset`: forget every object, idempotency record, fault and count.
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


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_post("/_sandbox/faults", _add_fault)
    router.add_get("/_sandbox/faults", _list_faults)
    router.add_delete("/_sandbox/faults", _clear_faults)
    router.add_post("/_sandbox/reset", _reset)
    router.add_get("/_sandbox/stats", _stats)


async def _add_fault(request: web.Request) -> web.Response:
    params = FAULT_PARAMS.parse(await _body(request))
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
    sandbox.stats = Stats()
    await sandbox.store.flush()
    return web.json_response({"reset": True})


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

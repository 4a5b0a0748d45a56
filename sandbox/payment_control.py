"""The control API for what happens to money after checkout, under `/_sandbox/` (no API key):

- `POST /_sandbox/charges/{charge}/dispute` (`amount`, `reason`): the cardholder disputes a
  captured charge (`disputes.open_dispute`); answers with the dispute.
- `POST /_sandbox/disputes/{dispute}/close` (`status` `won` or `lost`): the card network
  decides it (`disputes.close_dispute`); answers with the dispute.
- `POST /_sandbox/refunds/{refund}/fail` (`failure_reason`, `unknown` when absent): a refund
  that the customer's card or bank refused after all (`refunds.fail`); answers with the refund.

Captures and refunds "made in the Dashboard" need no route of their own: they are the API's,
made with any test key. Authorisations lapse and bank refunds settle on the sandbox clock
(`/_sandbox/clock/advance`, `payment_deadlines.py`).
"""

from aiohttp import web

from .context import SANDBOX
from .control import read_body
from .disputes import CLOSE_PARAMS, OPEN_PARAMS, close_dispute, open_dispute
from .refunds import FAIL_PARAMS, fail


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_post("/_sandbox/charges/{charge}/dispute", _dispute)
    router.add_post("/_sandbox/disputes/{dispute}/close", _close)
    router.add_post("/_sandbox/refunds/{refund}/fail", _fail)


async def _dispute(request: web.Request) -> web.Response:
    params = OPEN_PARAMS.parse(await read_body(request))
    sandbox = request.app[SANDBOX]
    charge_id = request.match_info["charge"]
    return web.json_response(open_dispute(sandbox.store, sandbox.clock.now(), charge_id, params))


async def _close(request: web.Request) -> web.Response:
    status = CLOSE_PARAMS.parse(await read_body(request))["status"]
    sandbox = request.app[SANDBOX]
    dispute_id = request.match_info["dispute"]
    return web.json_response(close_dispute(sandbox.store, sandbox.clock.now(), dispute_id, status))


async def _fail(request: web.Request) -> web.Response:
    params = FAIL_PARAMS.parse(await read_body(request))
    sandbox = request.app[SANDBOX]
    refund_id = request.match_info["refund"]
    reason = params.get("failure_reason", "unknown")
    return web.json_response(fail(sandbox.store, sandbox.clock.now(), refund_id, reason))

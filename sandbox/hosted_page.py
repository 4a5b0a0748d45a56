"""The hosted payment page at a session's `url` (`/c/pay/{session}`), for people and tests.

It shows the line items and amounts with three buttons, each a form post under the same path:
**Pay** completes the session paid by card and redirects (303) to `success_url`, with
`{CHECKOUT_SESSION_ID}` replaced, or shows "Payment complete" when there is none; **Pay by bank
debit** completes it `unpaid`, as a delayed payment method does, and redirects the same way;
**Decline** is a declined card: the session stays open and the page says so, so the customer can
try again. An expired or complete session shows a message instead of buttons; an unknown id (or
a session without a hosted page) is a 404 page. The page is self-contained: no scripts, no
external assets. Everything printed is HTML-escaped.
"""

from collections.abc import Awaitable, Callable
from decimal import Decimal
from html import escape
from typing import Any

from aiohttp import web

from .adaptive_pricing import ZERO_DECIMAL
from .checkout import LINE_ITEMS, SESSION, expire_due
from .completion import complete
from .context import SANDBOX

_PATH = "/c/pay/{session}"
_DECLINED = "Your card was declined."
_STYLE = """
body { font-family: system-ui, sans-serif; background: #f6f9fc; color: #1a1f36; margin: 0; }
main { max-width: 32rem; margin: 3rem auto; background: #fff; padding: 2rem;
       border-radius: 8px; box-shadow: 0 1px 4px rgba(0, 0, 0, .1); }
table { width: 100%; border-collapse: collapse; margin: 1rem 0; }
td { padding: .35rem 0; } td.amount { text-align: right; white-space: nowrap; }
tr.total td { font-weight: 600; border-top: 1px solid #e3e8ee; }
form { display: inline; } button { font-size: 1rem; padding: .6rem 1.2rem; margin: .3rem .3rem 0 0;
       border: 0; border-radius: 6px; cursor: pointer; background: #635bff; color: #fff; }
button.secondary { background: #e3e8ee; color: #1a1f36; }
p.error { color: #cd3d64; font-weight: 600; }
"""


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get(_PATH, _show)
    router.add_post(_PATH + "/pay", _action(_pay))
    router.add_post(_PATH + "/bank_debit", _action(_bank_debit))
    router.add_post(_PATH + "/decline", _action(_decline))


Action = Callable[[web.Request, dict[str, Any]], web.Response]


async def _show(request: web.Request) -> web.Response:
    session = _session(request)
    if session is None:
        return _not_found(request)
    if session["status"] != "open":
        return _closed(session, status=200)
    return _page(_checkout(request, session))


def _action(action: Action) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        session = _session(request)
        if session is None:
            return _not_found(request)
        if session["status"] != "open":
            return _closed(session, status=409)
        return action(request, session)

    return handle


def _pay(request: web.Request, session: dict[str, Any]) -> web.Response:
    return _complete(request, session, "paid")


def _bank_debit(request: web.Request, session: dict[str, Any]) -> web.Response:
    return _complete(request, session, "unpaid")


def _decline(request: web.Request, session: dict[str, Any]) -> web.Response:
    return _page(_checkout(request, session, error=_DECLINED))


def _complete(request: web.Request, session: dict[str, Any], payment_status: str) -> web.Response:
    sandbox = request.app[SANDBOX]
    complete(sandbox.store, sandbox.clock.now(), session, {"payment_status": payment_status})
    if session["success_url"] is None:
        return _page("<h1>Payment complete</h1><p>You can close this page.</p>")
    location = session["success_url"].replace("{CHECKOUT_SESSION_ID}", session["id"])
    return web.Response(status=303, headers={"Location": location})


def _session(request: web.Request) -> dict[str, Any] | None:
    sandbox = request.app[SANDBOX]
    expire_due(sandbox.store, sandbox.clock.now())
    session: dict[str, Any] | None = sandbox.store.get(SESSION, request.match_info["session"])
    if session is None or session["ui_mode"] != "hosted_page":
        return None
    return session


def _checkout(request: web.Request, session: dict[str, Any], error: str | None = None) -> str:
    currency = session["currency"] or ""
    rows = [
        _row(f"{item['description']}, qty {item['quantity']}", item["amount_subtotal"], currency)
        for item in request.app[SANDBOX].store.attached(LINE_ITEMS, session["id"])
    ]
    details = session["total_details"]
    if details is not None:
        rows += [
            _row("Subtotal", session["amount_subtotal"], currency),
            _row("Discount", -details["amount_discount"], currency),
            _row("Shipping", details["amount_shipping"], currency),
            _row("Tax", details["amount_tax"], currency),
            _row(f"Total ({currency.upper()})", session["amount_total"], currency, "total"),
        ]
    else:
        rows.append("<tr><td>Nothing to pay now: your payment details are saved.</td></tr>")
    base = f"/c/pay/{escape(session['id'])}"
    return (
        "<h1>Checkout</h1>"
        + (f'<p class="error">{escape(error)}</p>' if error else "")
        + f"<table>{''.join(rows)}</table>"
        + _button(f"{base}/pay", "Pay")
        + _button(f"{base}/bank_debit", "Pay by bank debit", "secondary")
        + _button(f"{base}/decline", "Decline", "secondary")
    )


def _row(label: str, amount: int, currency: str, css: str = "") -> str:
    return (
        f'<tr class="{css}"><td>{escape(label)}</td>'
        f'<td class="amount">{escape(_money(amount, currency))}</td></tr>'
    )


def _button(action: str, label: str, css: str = "") -> str:
    return (
        f'<form method="post" action="{action}">'
        f'<button type="submit" class="{css}">{escape(label)}</button></form>'
    )


def _money(amount: int, currency: str) -> str:
    """`1,234.50 USD`, in the currency's major unit (zero-decimal currencies have no cents)."""
    if currency in ZERO_DECIMAL:
        return f"{amount:,} {currency.upper()}"
    return f"{Decimal(amount) / 100:,.2f} {currency.upper()}"


def _closed(session: dict[str, Any], status: int) -> web.Response:
    if session["status"] == "expired":
        message = "This Checkout Session has expired."
    else:
        message = "This Checkout Session is complete."
    return _page(f"<h1>{escape(message)}</h1>", status=status)


def _not_found(request: web.Request) -> web.Response:
    session_id = escape(request.match_info["session"])
    return _page(f"<h1>No such Checkout Session</h1><p>{session_id}</p>", status=404)


def _page(body: str, status: int = 200) -> web.Response:
    html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Checkout (Stripe sandbox)</title><style>{_STYLE}</style></head>"
        f"<body><main>{body}</main></body></html>"
    )
    return web.Response(status=status, text=html, content_type="text/html")

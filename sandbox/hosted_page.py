"""The hosted payment page at a session's `url` (`/c/pay/{session}`), for people and tests.

It shows the line items and amounts, and a payment form that asks for what the session
collects (`payment_form.py`: the card, phone, names, tax ID, address, custom fields, consent)
with three buttons, each a form post under the same path: **Pay** completes the session paid by
the card entered (a Stripe test card, `cards.py`) and redirects (303) to `success_url`, with
`{CHECKOUT_SESSION_ID}` replaced, or shows "Payment complete" when there is none; **Pay by bank
debit** completes it `unpaid`, as a delayed payment method does, and redirects the same way;
**Decline** is a declined card. A declined card, a required entry left out (the form marks them
`required`, and the server checks them as `/pay` does) or a failed challenge leaves the session
open and shows the page again with the reason and what was entered, so the customer can try
again.

A card that needs authentication (3D Secure) leads to `/c/pay/{session}/authenticate`, the
bank's challenge, with **Complete** (the payment goes through) and **Fail** (the page says "We
are unable to authenticate your payment method…", as Stripe's does).

An expired or complete session shows a message instead of buttons; an unknown id (or a session
without a hosted page) is a 404 page. The page is self-contained: no scripts, no external assets
(a link to the account's terms of service aside). Everything printed is HTML-escaped.

What the customer may change before paying (`customer_choices.py`) is an **Update** form, when
the session offers anything to change: a promotion code box (`allow_promotion_codes`), a
quantity for each adjustable line item, a choice of shipping options. It posts to
`/c/pay/{session}/update`, which changes the open session and shows its new amounts, or says
why the choice was refused (400).

With Adaptive Pricing, the customer's location decides the currency they pay in
(`adaptive_pricing.py`): open the page as `?country=DE` (or `?presentment_currency=eur`) and it
shows the converted total, and its Pay buttons pay in that currency.

`tests/browser` drives this page in Chromium, and `make screenshots` photographs it for the
README (docs/images/).
"""

from collections.abc import Awaitable, Callable
from html import escape
from typing import Any

from aiohttp import web

from .adaptive_pricing import CURRENCY_BY_COUNTRY, convert
from .checkout import SESSION, expire_due, visible_line_items
from .completion import PAY_PARAMS, complete
from .context import SANDBOX
from .currencies import format_amount
from .customer_choices import CHOICE_PARAMS, apply_choices
from .errors import StripeError
from .forms import decode
from .payment_form import after_submit, payment_fields
from .shipping import SHIPPING_RATE
from .store import Store

_PATH = "/c/pay/{session}"
_DECLINED = "Your card was declined."
# Attachment keyed by session id: the payment form a 3D Secure challenge holds back until the
# customer completes or fails it.
CHALLENGED = "checkout.session.challenged_payment"
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
fieldset { border: 1px solid #e3e8ee; border-radius: 6px; margin: 1rem 0; }
legend { font-weight: 600; } label { display: block; margin: .4rem 0; }
input[type=text], input[type=email], input[type=tel], select { width: 100%; padding: .35rem;
       box-sizing: border-box; border: 1px solid #cfd7df; border-radius: 4px; font-size: 1rem; }
p.error { color: #cd3d64; font-weight: 600; } p.note { color: #697386; }
"""


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get(_PATH, _show)
    router.add_post(_PATH + "/pay", _action(_pay))
    router.add_post(_PATH + "/bank_debit", _action(_bank_debit))
    router.add_post(_PATH + "/decline", _action(_decline))
    router.add_post(_PATH + "/update", _action(_update))
    router.add_get(_PATH + "/authenticate", _challenge)
    router.add_post(_PATH + "/authenticate", _action(_authenticate))


Action = Callable[[web.Request, dict[str, Any], dict[str, Any]], web.Response]


async def _show(request: web.Request) -> web.Response:
    session = _session(request)
    if session is None:
        return _not_found(request)
    if session["status"] != "open":
        return _closed(session, status=200)
    return _page(_checkout(request, session, _presented(session, dict(request.query))))


def _action(action: Action) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        session = _session(request)
        if session is None:
            return _not_found(request)
        if session["status"] != "open":
            return _closed(session, status=409)
        form = decode(await request.text())
        # An empty box is no choice: drop what the customer left blank.
        return action(request, session, {name: value for name, value in form.items() if value})

    return handle


def _pay(request: web.Request, session: dict[str, Any], form: dict[str, Any]) -> web.Response:
    return _complete(request, session, form, "paid")


def _bank_debit(
    request: web.Request, session: dict[str, Any], form: dict[str, Any]
) -> web.Response:
    return _complete(request, session, form, "unpaid")


def _decline(request: web.Request, session: dict[str, Any], form: dict[str, Any]) -> web.Response:
    return _page(_checkout(request, session, _presented(session, form), error=_DECLINED))


def _update(request: web.Request, session: dict[str, Any], form: dict[str, Any]) -> web.Response:
    sandbox = request.app[SANDBOX]
    presented = _presented(session, form)
    choices = {name: value for name, value in form.items() if name in CHOICE_PARAMS.fields}
    try:
        apply_choices(sandbox.store, sandbox.clock.now(), session, CHOICE_PARAMS.parse(choices))
    except StripeError as refused:
        return _page(_checkout(request, session, presented, error=refused.message), status=400)
    return _page(_checkout(request, session, presented))


def _complete(
    request: web.Request, session: dict[str, Any], form: dict[str, Any], payment_status: str
) -> web.Response:
    entries = {name: value for name, value in form.items() if name not in CHOICE_PARAMS.fields}
    # A tax ID is its number: the type the select always sends is no entry without one.
    if not (entries.get("tax_id") or {}).get("value"):
        entries.pop("tax_id", None)
    presented = _presented(session, form)
    if presented is not None:
        entries["presentment_currency"] = presented
    return _submit(request, session, {**entries, "payment_status": payment_status}, form)


def _submit(
    request: web.Request, session: dict[str, Any], entries: dict[str, Any], form: dict[str, Any]
) -> web.Response:
    """Pay with what the customer entered: the success URL, a 3D Secure challenge, or the page
    again with the refusal and the entries."""
    sandbox = request.app[SANDBOX]
    try:
        complete(sandbox.store, sandbox.clock.now(), session, PAY_PARAMS.parse(entries))
    except StripeError as refused:
        if refused.param == "three_d_secure" and refused.code == "parameter_missing":
            sandbox.store.attach(CHALLENGED, session["id"], entries)
            location = f"/c/pay/{session['id']}/authenticate"
            return web.Response(status=303, headers={"Location": location})
        # A card's refusal is the bank's answer, not a mistake in the form.
        status = 200 if refused.type == "card_error" else 400
        presented = _presented(session, form)
        page = _checkout(request, session, presented, error=refused.message, entered=form)
        return _page(page, status=status)
    if session["success_url"] is None:
        return _page("<h1>Payment complete</h1><p>You can close this page.</p>")
    location = session["success_url"].replace("{CHECKOUT_SESSION_ID}", session["id"])
    return web.Response(status=303, headers={"Location": location})


async def _challenge(request: web.Request) -> web.Response:
    """The bank's 3D Secure challenge, as a test page: Complete or Fail."""
    session = _session(request)
    if session is None:
        return _not_found(request)
    if session["status"] != "open":
        return _closed(session, status=200)
    if request.app[SANDBOX].store.attached(CHALLENGED, session["id"]) is None:
        return web.Response(status=303, headers={"Location": f"/c/pay/{session['id']}"})
    action = f"/c/pay/{escape(session['id'])}/authenticate"
    return _page(
        "<h1>Authenticate your payment</h1>"
        "<p>Your bank asks you to confirm this payment (a 3D Secure test challenge).</p>"
        f'<form method="post" action="{action}">'
        '<button type="submit" name="outcome" value="complete">Complete</button>'
        '<button type="submit" name="outcome" value="fail" class="secondary">Fail</button>'
        "</form>"
    )


def _authenticate(
    request: web.Request, session: dict[str, Any], form: dict[str, Any]
) -> web.Response:
    store = request.app[SANDBOX].store
    entries = store.attached(CHALLENGED, session["id"])
    if entries is None or form.get("outcome") not in ("complete", "fail"):
        return web.Response(status=303, headers={"Location": f"/c/pay/{session['id']}"})
    store.detach(CHALLENGED, session["id"])
    answered = {**entries, "three_d_secure": form["outcome"]}
    return _submit(request, session, answered, entries)


def _session(request: web.Request) -> dict[str, Any] | None:
    sandbox = request.app[SANDBOX]
    expire_due(sandbox.store, sandbox.clock.now())
    session: dict[str, Any] | None = sandbox.store.get(SESSION, request.match_info["session"])
    if session is None or session["ui_mode"] != "hosted_page":
        return None
    return session


def _presented(session: dict[str, Any], given: dict[str, Any]) -> str | None:
    """The currency Adaptive Pricing shows this customer: the one they chose, else their
    country's; None when they pay in the session's own currency."""
    if not session["adaptive_pricing"]["enabled"] or session["total_details"] is None:
        return None
    chosen = given.get("presentment_currency")
    if not isinstance(chosen, str):
        country = given.get("country")
        chosen = CURRENCY_BY_COUNTRY.get(country.upper()) if isinstance(country, str) else None
    if chosen is None or convert(0, session["currency"], chosen.lower()) is None:
        return None
    return chosen.lower()


def _checkout(
    request: web.Request,
    session: dict[str, Any],
    presented: str | None,
    error: str | None = None,
    entered: dict[str, Any] | None = None,
) -> str:
    currency = session["currency"] or ""
    items = visible_line_items(request.app[SANDBOX].store, session["id"])
    rows = [
        _row(f"{item['description']}, qty {item['quantity']}", item["amount_subtotal"], currency)
        for item in items
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
        converted = (
            None if presented is None else convert(session["amount_total"], currency, presented)
        )
        if converted is not None:
            amount, shown = converted["presentment_amount"], str(converted["presentment_currency"])
            assert isinstance(amount, int)
            rows.append(_row(f"You pay ({shown.upper()})", amount, shown, "total"))
    else:
        rows.append("<tr><td>Nothing to pay now: your payment details are saved.</td></tr>")
    base = f"/c/pay/{escape(session['id'])}"
    hidden = {} if presented is None else {"presentment_currency": presented}
    store = request.app[SANDBOX].store
    return (
        "<h1>Checkout</h1>"
        + (f'<p class="error" role="alert">{escape(error)}</p>' if error else "")
        + f"<table>{''.join(rows)}</table>"
        + _choices(store, session, items, base, hidden)
        + f'<form method="post" action="{base}/pay" class="payment">'
        + payment_fields(store, session, entered or {})
        + _hidden(hidden)
        + '<button type="submit">Pay</button>'
        + f'<button type="submit" formaction="{base}/bank_debit" class="secondary">'
        "Pay by bank debit</button>"
        # A declined card needs nothing entered.
         + f'<button type="submit" formaction="{base}/decline" formnovalidate class="secondary">'
        "Decline</button></form>" + after_submit(session)
    )


def _choices(
    store: Store,
    session: dict[str, Any],
    items: list[dict[str, Any]],
    base: str,
    hidden: dict[str, str],
) -> str:
    """The Update form: whatever this session lets the customer change."""
    fields = []
    if session["allow_promotion_codes"]:
        fields.append('<label>Promotion code <input name="promotion_code"></label>')
    for index, item in enumerate(items):
        adjustable = item["adjustable_quantity"]
        if adjustable and adjustable["enabled"]:
            fields.append(
                f"<label>{escape(item['description'])}: quantity "
                f'<input type="number" name="line_items[{index}][quantity]" '
                f'value="{item["quantity"]}" min="{adjustable["minimum"]}" '
                f'max="{adjustable["maximum"]}"></label>'
            )
    selected = (session["shipping_cost"] or {}).get("shipping_rate")
    if len(session["shipping_options"]) > 1:
        for option in session["shipping_options"]:
            rate = escape(option["shipping_rate"])
            checked = " checked" if option["shipping_rate"] == selected else ""
            amount = format_amount(option["shipping_amount"], session["currency"])
            name = store.get(SHIPPING_RATE, option["shipping_rate"])["display_name"]
            fields.append(
                f'<label><input type="radio" name="shipping_rate" value="{rate}"{checked}> '
                f"{escape(name)} shipping, {escape(amount)}</label>"
            )
    if not fields:
        return ""
    return (
        f'<form method="post" action="{base}/update"><fieldset>{"".join(fields)}'
        f"{_hidden(hidden)}"
        '<button type="submit" class="secondary">Update</button></fieldset></form>'
    )


def _row(label: str, amount: int, currency: str, css: str = "") -> str:
    return (
        f'<tr class="{css}"><td>{escape(label)}</td>'
        f'<td class="amount">{escape(format_amount(amount, currency))}</td></tr>'
    )


def _hidden(values: dict[str, str]) -> str:
    return "".join(
        f'<input type="hidden" name="{escape(name)}" value="{escape(value)}">'
        for name, value in values.items()
    )


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

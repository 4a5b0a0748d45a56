"""`return_url` is required for `embedded_page` and for `elements` when a redirect-based
payment method may be offered (`payment_methods.py`)."""

from typing import Any

import pytest
import stripe

from sandbox.launcher import SandboxProcess

from .support import session_params

RETURN_URL = "https://shop.example/return?cs={CHECKOUT_SESSION_ID}"


def elements(**extra: Any) -> Any:
    return session_params(success_url=None, ui_mode="elements", **extra)


@pytest.mark.parametrize(
    "params",
    [
        pytest.param(elements(allowed_payment_method_types=["card", "ideal"]), id="ideal"),
        pytest.param(elements(allowed_payment_method_types=["bancontact"]), id="bancontact"),
        pytest.param(elements(allowed_payment_method_types=["klarna", "card"]), id="klarna"),
        # No list: the Dashboard's payment methods, which may redirect.
        pytest.param(elements(), id="dynamic payment methods"),
        pytest.param(session_params(success_url=None, ui_mode="embedded_page"), id="embedded"),
    ],
)
async def test_required_where_the_customer_may_be_redirected(
    sandbox: SandboxProcess, client: stripe.StripeClient, params: Any
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await client.v1.checkout.sessions.create_async(params)
    assert (caught.value.param, caught.value.code) == ("return_url", "parameter_missing")
    fixed: Any = {**params, "return_url": RETURN_URL}
    with_url = await client.v1.checkout.sessions.create_async(fixed)
    assert with_url.return_url == RETURN_URL


@pytest.mark.parametrize(
    "params",
    [
        pytest.param(elements(allowed_payment_method_types=["card"]), id="card"),
        pytest.param(
            elements(allowed_payment_method_types=["card", "link", "sepa_debit"]), id="no redirect"
        ),
        pytest.param(
            elements(
                allowed_payment_method_types=["card", "ideal"],
                excluded_payment_method_types=["ideal"],
            ),
            id="redirect excluded",
        ),
        pytest.param(
            session_params(
                success_url=None, ui_mode="embedded_page", redirect_on_completion="never"
            ),
            id="embedded never redirects",
        ),
    ],
)
async def test_not_required_where_nothing_redirects(
    sandbox: SandboxProcess, client: stripe.StripeClient, params: Any
) -> None:
    session = await client.v1.checkout.sessions.create_async(params)
    assert session.return_url is None and session.client_secret is not None

"""What the customer enters before paying, through the control route `/pay` (which takes the
same entries as the hosted page): the session's `customer_details`, custom fields, consent and
`collected_information` once it completes, and the refusals while something required is
missing or something not asked for is given. The session stays open after each refusal."""

from typing import Any

import httpx
import pytest
import stripe

from sandbox.launcher import SandboxProcess

from .support import pay, session_params

ADDRESS = {
    "line1": "Unter den Linden 1",
    "city": "Berlin",
    "postal_code": "10117",
    "country": "DE",
}


async def refused(raw: httpx.AsyncClient, session_id: str, **details: Any) -> dict[str, Any]:
    """The error of a `/pay` that must be refused."""
    answer = await raw.post(f"/_sandbox/checkout/sessions/{session_id}/pay", json=details)
    assert answer.status_code in (400, 402), answer.text
    error: dict[str, Any] = answer.json()["error"]
    return error


async def collecting_session(client: stripe.StripeClient, raw: httpx.AsyncClient) -> str:
    (
        await raw.post(
            "/_sandbox/account/public_details",
            json={"terms_of_service_url": "https://shop.example/terms"},
        )
    ).raise_for_status()
    session = await client.v1.checkout.sessions.create_async(
        session_params(
            phone_number_collection={"enabled": True},
            tax_id_collection={"enabled": True, "required": "if_supported"},
            billing_address_collection="required",
            name_collection={
                "business": {"enabled": True},
                "individual": {"enabled": True, "optional": True},
            },
            custom_fields=[
                {
                    "key": "giftnote",
                    "label": {"type": "custom", "custom": "Gift note"},
                    "type": "text",
                    "text": {"minimum_length": 2, "maximum_length": 20},
                },
                {
                    "key": "ponumber",
                    "label": {"type": "custom", "custom": "PO number"},
                    "type": "numeric",
                    "optional": True,
                },
                {
                    "key": "colour",
                    "label": {"type": "custom", "custom": "Colour"},
                    "type": "dropdown",
                    "dropdown": {
                        "options": [
                            {"label": "Red", "value": "red"},
                            {"label": "Blue", "value": "blue"},
                        ],
                        "default_value": "blue",
                    },
                },
            ],
            consent_collection={"terms_of_service": "required", "promotions": "auto"},
        )
    )
    return session.id


COMPLETE = {
    "email": "erika@example.com",
    "name": "Erika Mustermann",
    "phone": "+49 30 1234567",
    "business_name": "Muster GmbH",
    "tax_id": {"type": "eu_vat", "value": "DE123456789"},
    "custom_fields": {"giftnote": "Happy birthday"},
    "consent": {"terms_of_service": "accepted"},
    **ADDRESS,
}


async def test_everything_entered_comes_back(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    session_id = await collecting_session(client, raw)
    await pay(raw, session_id, **COMPLETE)
    session = await client.v1.checkout.sessions.retrieve_async(session_id)
    details = session.customer_details
    assert details is not None and details.address is not None
    assert (details.name, details.email, details.phone, details.business_name) == (
        "Erika Mustermann",
        "erika@example.com",
        "+49301234567",
        "Muster GmbH",
    )
    assert (details.individual_name, details.tax_exempt) == (None, "none")
    assert details.tax_ids is not None
    assert [(t.type, t.value) for t in details.tax_ids] == [("eu_vat", "DE123456789")]
    assert (details.address.line1, details.address.country) == ("Unter den Linden 1", "DE")
    values = {field.key: getattr(field, field.type).value for field in session.custom_fields}
    # The dropdown's default counts as chosen; the optional field left empty has no value.
    assert values == {"giftnote": "Happy birthday", "ponumber": None, "colour": "blue"}
    assert session.consent is not None
    assert (session.consent.terms_of_service, session.consent.promotions) == (
        "accepted",
        "opt_out",
    )
    collected = session.collected_information
    assert collected is not None and collected.business_name == "Muster GmbH"


async def test_the_customer_may_choose_and_opt_in(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    session_id = await collecting_session(client, raw)
    await pay(
        raw,
        session_id,
        **{
            **COMPLETE,
            "individual_name": "Erika M.",
            "custom_fields": {"giftnote": "Hi", "ponumber": "4711", "colour": "red"},
            "consent": {"terms_of_service": "accepted", "promotions": "opt_in"},
        },
    )
    session = await client.v1.checkout.sessions.retrieve_async(session_id)
    values = [getattr(field, field.type).value for field in session.custom_fields]
    assert values == ["Hi", "4711", "red"]
    assert session.consent is not None and session.consent.promotions == "opt_in"
    assert session.customer_details is not None
    assert session.customer_details.individual_name == "Erika M."
    assert session.collected_information is not None
    assert session.collected_information.individual_name == "Erika M."


@pytest.mark.parametrize(
    ("left_out", "param"),
    [
        ("phone", "phone"),
        ("business_name", "business_name"),
        ("tax_id", "tax_id"),
        ("custom_fields", "custom_fields[giftnote]"),
        ("consent", "consent[terms_of_service]"),
        ("line1", "line1"),
        ("postal_code", "postal_code"),
    ],
)
async def test_a_required_entry_is_missing(
    sandbox: SandboxProcess,
    client: stripe.StripeClient,
    raw: httpx.AsyncClient,
    left_out: str,
    param: str,
) -> None:
    session_id = await collecting_session(client, raw)
    details = {name: value for name, value in COMPLETE.items() if name != left_out}
    error = await refused(raw, session_id, **details)
    assert (error["param"], error["code"]) == (param, "parameter_missing")
    assert (await client.v1.checkout.sessions.retrieve_async(session_id)).status == "open"


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"phone": "call me"}, "phone"),
        ({"phone": "+1 234"}, "phone"),
        ({"custom_fields": {"giftnote": "x"}}, "custom_fields[giftnote]"),
        ({"custom_fields": {"giftnote": "y" * 21}}, "custom_fields[giftnote]"),
        ({"custom_fields": {"giftnote": "ok", "ponumber": "12a"}}, "custom_fields[ponumber]"),
        ({"custom_fields": {"giftnote": "ok", "colour": "green"}}, "custom_fields[colour]"),
        ({"custom_fields": {"giftnote": "ok", "size": "L"}}, "custom_fields"),
        ({"tax_id": {"type": "xx_vat", "value": "1"}}, "tax_id[type]"),
        ({"consent": {"terms_of_service": "declined"}}, "consent[terms_of_service]"),
        ({"save_payment_method": True}, "save_payment_method"),
    ],
)
async def test_a_malformed_entry(
    sandbox: SandboxProcess,
    client: stripe.StripeClient,
    raw: httpx.AsyncClient,
    change: dict[str, Any],
    param: str,
) -> None:
    session_id = await collecting_session(client, raw)
    error = await refused(raw, session_id, **{**COMPLETE, **change})
    assert error["param"] == param
    assert (await client.v1.checkout.sessions.retrieve_async(session_id)).status == "open"


@pytest.mark.parametrize(
    ("entry", "param"),
    [
        ({"phone": "+4930123456"}, "phone"),
        ({"business_name": "Muster GmbH"}, "business_name"),
        ({"individual_name": "Erika"}, "individual_name"),
        ({"tax_id": {"type": "eu_vat", "value": "DE1"}}, "tax_id"),
        ({"custom_fields": {"giftnote": "Hi"}}, "custom_fields"),
        ({"consent": {"terms_of_service": "accepted"}}, "consent"),
    ],
)
async def test_what_the_session_does_not_ask_for_is_refused(
    sandbox: SandboxProcess,
    client: stripe.StripeClient,
    raw: httpx.AsyncClient,
    entry: dict[str, Any],
    param: str,
) -> None:
    session = await client.v1.checkout.sessions.create_async(session_params())
    error = await refused(raw, session.id, **entry)
    assert error["param"] == param


async def test_a_business_name_comes_with_tax_id_collection(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    session = await client.v1.checkout.sessions.create_async(
        session_params(tax_id_collection={"enabled": True})
    )
    await pay(raw, session.id, business_name="Muster GmbH")
    paid = await client.v1.checkout.sessions.retrieve_async(session.id)
    assert paid.customer_details is not None
    assert (paid.customer_details.business_name, paid.customer_details.tax_ids) == (
        "Muster GmbH",
        [],
    )


async def test_a_created_customer_keeps_the_phone(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    session = await client.v1.checkout.sessions.create_async(
        session_params(customer_creation="always", phone_number_collection={"enabled": True})
    )
    await pay(raw, session.id, phone="(415) 555-0100", email="ada@example.com")
    paid = await client.v1.checkout.sessions.retrieve_async(session.id, {"expand": ["customer"]})
    assert isinstance(paid.customer, stripe.Customer)
    assert paid.customer.phone == "+4155550100"

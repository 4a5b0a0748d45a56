"""Disputes opened and decided through the control API and read and answered through
stripe-python: the charge's `disputed` flag, the funds withdrawn and reinstated, the refusal to
refund a charged-back payment, evidence, and the events of each."""

import httpx
import pytest
import stripe

from sandbox.launcher import SandboxProcess

from .support import charge_of, checkout_payment, event_types, ids, missing_fields

DISPUTE_EVENTS = (
    "charge.dispute.created",
    "charge.dispute.updated",
    "charge.dispute.closed",
    "charge.dispute.funds_withdrawn",
    "charge.dispute.funds_reinstated",
)


async def open_dispute(raw: httpx.AsyncClient, charge_id: str, **params: object) -> httpx.Response:
    return await raw.post(f"/_sandbox/charges/{charge_id}/dispute", json=params)


async def close(raw: httpx.AsyncClient, dispute_id: str, status: str) -> httpx.Response:
    return await raw.post(f"/_sandbox/disputes/{dispute_id}/close", json={"status": status})


async def disputed(
    client: stripe.StripeClient, raw: httpx.AsyncClient, unit_amount: int = 5000
) -> tuple[stripe.PaymentIntent, stripe.Dispute]:
    intent = await checkout_payment(client, raw, unit_amount=unit_amount)
    answer = await open_dispute(raw, charge_of(intent).id, reason="fraudulent")
    answer.raise_for_status()
    return intent, await client.v1.disputes.retrieve_async(answer.json()["id"])


async def test_a_dispute_withdraws_the_funds_and_blocks_refunds(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    intent, dispute = await disputed(client, raw)
    assert isinstance(dispute, stripe.Dispute)
    assert missing_fields(dispute) == []
    assert missing_fields(dispute.evidence) == [] and missing_fields(dispute.evidence_details) == []
    assert dispute.id.startswith("du_")
    assert (dispute.amount, dispute.currency, dispute.reason, dispute.status) == (
        5000,
        "usd",
        "fraudulent",
        "needs_response",
    )
    assert (dispute.charge, dispute.payment_intent) == (charge_of(intent).id, intent.id)
    assert dispute.is_charge_refundable is False
    assert dispute.evidence_details.due_by is not None
    assert dispute.evidence_details.due_by > dispute.created
    [withdrawal] = dispute.balance_transactions
    assert isinstance(withdrawal, stripe.BalanceTransaction)
    assert missing_fields(withdrawal) == []
    assert (withdrawal.amount, withdrawal.net, withdrawal.reporting_category) == (
        -5000,
        -5000,
        "dispute",
    )
    charge = await client.v1.charges.retrieve_async(charge_of(intent).id)
    assert charge.disputed is True
    with pytest.raises(stripe.InvalidRequestError) as refused:
        await client.v1.refunds.create_async({"payment_intent": intent.id})
    assert refused.value.code == "charge_disputed"
    assert await event_types(client, *DISPUTE_EVENTS) == [
        "charge.dispute.created",
        "charge.dispute.funds_withdrawn",
    ]
    [created] = (await client.v1.events.list_async({"type": "charge.dispute.created"})).data
    assert isinstance(created.data.object, stripe.Dispute)
    assert created.data.object.id == dispute.id


async def test_a_won_dispute_gives_the_funds_back(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    intent, dispute = await disputed(client, raw)
    answer = await close(raw, dispute.id, "won")
    assert answer.status_code == 200 and answer.json()["status"] == "won"
    won = await client.v1.disputes.retrieve_async(dispute.id)
    assert (won.status, won.is_charge_refundable) == ("won", True)
    assert [t.amount for t in won.balance_transactions] == [-5000, 5000]
    assert won.balance_transactions[1].reporting_category == "dispute_reversal"
    assert await event_types(client, *DISPUTE_EVENTS) == [
        "charge.dispute.created",
        "charge.dispute.funds_withdrawn",
        "charge.dispute.closed",
        "charge.dispute.funds_reinstated",
    ]
    refund = await client.v1.refunds.create_async({"payment_intent": intent.id, "amount": 100})
    assert refund.status == "succeeded"
    assert (await close(raw, dispute.id, "lost")).status_code == 400


async def test_a_lost_dispute_keeps_the_funds_withdrawn(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    intent, dispute = await disputed(client, raw)
    await close(raw, dispute.id, "lost")
    lost = await client.v1.disputes.retrieve_async(dispute.id)
    assert (lost.status, lost.is_charge_refundable) == ("lost", False)
    assert [t.amount for t in lost.balance_transactions] == [-5000]
    with pytest.raises(stripe.InvalidRequestError) as refused:
        await client.v1.refunds.create_async({"payment_intent": intent.id})
    assert refused.value.code == "charge_disputed"
    assert (await event_types(client, *DISPUTE_EVENTS))[-1] == "charge.dispute.closed"


async def test_evidence_is_submitted_and_a_dispute_accepted(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    _, dispute = await disputed(client, raw)
    drafted = await client.v1.disputes.update_async(
        dispute.id,
        {"evidence": {"shipping_tracking_number": "1Z999"}, "metadata": {"case": "c-1"}},
    )
    assert (drafted.status, drafted.evidence.shipping_tracking_number) == (
        "needs_response",
        "1Z999",
    )
    assert drafted.evidence_details.has_evidence is True
    submitted = await client.v1.disputes.update_async(dispute.id, {"submit": True})
    assert (submitted.status, submitted.evidence_details.submission_count) == ("under_review", 1)
    assert submitted.metadata["case"] == "c-1"
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.disputes.update_async(dispute.id, {"evidence": {"customer_name": "Ada"}})
    with pytest.raises(stripe.InvalidRequestError) as file_evidence:
        await client.v1.disputes.update_async(dispute.id, {"evidence": {"receipt": "file_123"}})
    assert file_evidence.value.code == "parameter_unknown"
    accepted = await client.v1.disputes.close_async(dispute.id)
    assert accepted.status == "lost"
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.disputes.close_async(dispute.id)
    assert await event_types(client, *DISPUTE_EVENTS) == [
        "charge.dispute.created",
        "charge.dispute.funds_withdrawn",
        "charge.dispute.updated",
        "charge.dispute.updated",
        "charge.dispute.closed",
    ]


async def test_what_cannot_be_disputed(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    authorised = await checkout_payment(client, raw, capture_method="manual")
    assert (await open_dispute(raw, charge_of(authorised).id)).status_code == 400
    assert (await open_dispute(raw, "ch_nope")).status_code == 404
    paid = await checkout_payment(client, raw, unit_amount=5000)
    await client.v1.refunds.create_async({"payment_intent": paid.id, "amount": 2000})
    too_much = await open_dispute(raw, charge_of(paid).id, amount=3001)
    assert (too_much.status_code, too_much.json()["error"]["param"]) == (400, "amount")
    bad_reason = await open_dispute(raw, charge_of(paid).id, reason="bored")
    assert bad_reason.json()["error"]["param"] == "reason"
    # By default, what was not refunded.
    first = await open_dispute(raw, charge_of(paid).id)
    assert first.json()["amount"] == 3000
    assert (await open_dispute(raw, charge_of(paid).id)).status_code == 400
    assert (await close(raw, "du_nope", "won")).status_code == 404
    assert (await close(raw, first.json()["id"], "maybe")).status_code == 400


async def test_disputes_are_listed_by_payment(
    sandbox: SandboxProcess, client: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    one, first = await disputed(client, raw)
    _, second = await disputed(client, raw)
    assert ids((await client.v1.disputes.list_async()).data) == [second.id, first.id]
    mine = await client.v1.disputes.list_async({"payment_intent": one.id})
    assert ids(mine.data) == [first.id]
    by_charge = await client.v1.disputes.list_async({"charge": charge_of(one).id})
    assert ids(by_charge.data) == [first.id]
    expanded = await client.v1.disputes.retrieve_async(first.id, {"expand": ["charge"]})
    assert isinstance(expanded.charge, stripe.Charge) and expanded.charge.disputed is True
    with pytest.raises(stripe.InvalidRequestError) as missing:
        await client.v1.disputes.retrieve_async("du_nope")
    assert (missing.value.http_status, missing.value.code) == (404, "resource_missing")

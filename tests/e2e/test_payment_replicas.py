"""Money out never exceeds money in, and a request moves money once, across real replicas
(`python -m service` processes on one Postgres and one Stripe sandbox), crashes and Stripe's
faults (docs/architecture.md, "Payments after checkout")."""

from __future__ import annotations

import asyncio
from collections import Counter
from contextlib import suppress

import asyncpg
import grpc
import pytest
from google.rpc import error_details_pb2

from checkout.v1 import checkout_service_pb2 as api
from checkout.v1 import payments_pb2 as pay
from service.config import CRASH_AFTER_STRIPE_REFUND
from service.gateway.faults import CRASH_EXIT_CODE
from tests.e2e.helpers import Sandbox, Stub, detail, reason, stored
from tests.e2e.payments import (
    TOTAL,
    paid_order,
    refund,
    refunds_at_stripe,
    until_payment,
)
from tests.e2e.processes import replicas, service_process
from tests.support import eventually

REFUNDS = "/v1/refunds"


async def test_concurrent_refunds_on_two_replicas_never_exceed_the_capture(
    environ: dict[str, str], pg_dsn: str, stub: Stub, sandbox: Sandbox
) -> None:
    session = await paid_order(stub, sandbox)
    payment = await until_payment(stub, session.order_id, status=pay.Payment.SUCCEEDED)
    requests = [refund(session.order_id, 500) for _ in range(16)]

    async with replicas({**environ, "DATABASE_URL": pg_dsn}, 2) as processes:
        answers = await asyncio.gather(
            *(processes[i % 2].stub.RefundPayment(r) for i, r in enumerate(requests)),
            return_exceptions=True,
        )

    made = [a for a in answers if isinstance(a, api.RefundPaymentResponse)]
    refused = [a for a in answers if isinstance(a, grpc.aio.AioRpcError)]
    assert len(made) + len(refused) == len(requests)
    assert len(made) == TOTAL // 500
    assert {(e.code(), reason(e)) for e in refused} == {
        (grpc.StatusCode.FAILED_PRECONDITION, "REFUND_EXCEEDS_CAPTURED")
    }
    at_stripe = await refunds_at_stripe(sandbox, payment.payment_intent_id)
    assert sum(r.amount for r in at_stripe) == 500 * len(made) <= TOTAL
    assert Counter(r.id for r in at_stripe) == Counter(a.refund.id for a in made)
    final = await until_payment(stub, session.order_id, amount_refunded=500 * len(made))
    assert len(final.refunds) == len(made)


async def test_one_request_sent_to_two_replicas_at_once_refunds_once(
    environ: dict[str, str], pg_dsn: str, stub: Stub, sandbox: Sandbox
) -> None:
    session = await paid_order(stub, sandbox)
    request = refund(session.order_id, 700)

    async with replicas({**environ, "DATABASE_URL": pg_dsn}, 2) as processes:
        answers = await asyncio.gather(
            *(p.stub.RefundPayment(request) for p in processes), return_exceptions=True
        )
        # One of them may have found the other's call to Stripe still in flight (Stripe
        # answers 409 to a key in use): retried, as a caller does on UNAVAILABLE.
        retried = [
            await processes[0].stub.RefundPayment(request)
            if isinstance(a, grpc.aio.AioRpcError) and a.code() == grpc.StatusCode.UNAVAILABLE
            else a
            for a in answers
        ]

    made = [a for a in retried if isinstance(a, api.RefundPaymentResponse)]
    assert len(made) == 2
    assert made[0].refund.id == made[1].refund.id
    at_stripe = await refunds_at_stripe(sandbox, made[0].session.payment.payment_intent_id)
    assert [r.id for r in at_stripe] == [made[0].refund.id]


async def test_a_crash_between_stripes_refund_and_the_ledger_converges_on_that_refund(
    environ: dict[str, str], pg_dsn: str, stub: Stub, sandbox: Sandbox, db: asyncpg.Pool
) -> None:
    session = await paid_order(stub, sandbox)
    payment = await until_payment(stub, session.order_id, status=pay.Payment.SUCCEEDED)
    request = refund(session.order_id, 1200)
    env = {**environ, "DATABASE_URL": pg_dsn}
    # No webhook may tell the ledger of the refund: the retry alone must find it.
    sandbox.control("POST", "/_sandbox/webhooks/pause")
    try:
        async with service_process({**env, "CHECKOUT_FAULT": CRASH_AFTER_STRIPE_REFUND}) as doomed:
            with suppress(grpc.aio.AioRpcError):
                await doomed.stub.RefundPayment(request)
            assert await asyncio.wait_for(doomed.process.wait(), timeout=30) == CRASH_EXIT_CODE
        [made_at_stripe] = await refunds_at_stripe(sandbox, payment.payment_intent_id)
        state = await db.fetchval(
            "SELECT state FROM payment_operations WHERE request_id = $1", request.request_id
        )
        assert state == "pending"

        async with service_process(env) as survivor:
            retried = await survivor.stub.RefundPayment(request)
    finally:
        sandbox.control("POST", "/_sandbox/webhooks/resume")

    assert (retried.refund.id, retried.refund.amount) == (made_at_stripe.id, 1200)
    assert [r.id for r in await refunds_at_stripe(sandbox, payment.payment_intent_id)] == [
        made_at_stripe.id
    ]
    assert retried.session.payment.amount_refunded == 1200


async def test_the_sweep_alone_finishes_a_refund_whose_caller_crashed(
    environ: dict[str, str], pg_dsn: str, stub: Stub, sandbox: Sandbox, db: asyncpg.Pool
) -> None:
    session = await paid_order(stub, sandbox)
    payment = await until_payment(stub, session.order_id, status=pay.Payment.SUCCEEDED)
    request = refund(session.order_id, 800)
    env = {**environ, "DATABASE_URL": pg_dsn}
    sandbox.control("POST", "/_sandbox/webhooks/pause")
    try:
        async with service_process({**env, "CHECKOUT_FAULT": CRASH_AFTER_STRIPE_REFUND}) as doomed:
            with suppress(grpc.aio.AioRpcError):
                await doomed.stub.RefundPayment(request)
            await doomed.process.wait()
        # Age the operation past the grace the sweep gives a caller still at work.
        await db.execute(
            """UPDATE payment_operations SET updated_at = now() - interval '1 minute'
               WHERE request_id = $1""",
            request.request_id,
        )

        async def finished() -> bool:
            state = await db.fetchval(
                "SELECT state FROM payment_operations WHERE request_id = $1", request.request_id
            )
            return bool(state == "succeeded")

        async with service_process({**env, "SWEEP_INTERVAL_SECONDS": "0.2"}):
            await eventually(finished)
    finally:
        sandbox.control("POST", "/_sandbox/webhooks/resume")

    [made] = await refunds_at_stripe(sandbox, payment.payment_intent_id)
    stored_id = await db.fetchval(
        "SELECT refund_id FROM payment_operations WHERE request_id = $1", request.request_id
    )
    assert (stored_id, made.amount) == (made.id, 800)


async def test_a_lost_answer_from_stripe_is_unavailable_and_the_retry_refunds_once(
    stub: Stub, sandbox: Sandbox
) -> None:
    session = await paid_order(stub, sandbox)
    payment = await until_payment(stub, session.order_id, status=pay.Payment.SUCCEEDED)
    request = refund(session.order_id, 1000)
    sandbox.control(
        "POST",
        "/_sandbox/faults",
        {"path_prefix": REFUNDS, "method": "POST", "status": 500, "count": 1, "phase": "after"},
    )
    try:
        with pytest.raises(grpc.aio.AioRpcError) as lost:
            await stub.RefundPayment(request)
    finally:
        sandbox.control("DELETE", "/_sandbox/faults")
    # Its amount stays reserved while the outcome is unknown.
    with pytest.raises(grpc.aio.AioRpcError) as rest:
        await stub.RefundPayment(refund(session.order_id, TOTAL - 1000 + 1))
    retried = await stub.RefundPayment(request)

    assert lost.value.code() == grpc.StatusCode.UNAVAILABLE
    assert (
        detail(lost.value, error_details_pb2.RetryInfo).retry_delay.ToTimedelta().total_seconds()
        > 0
    )
    assert reason(rest.value) == "REFUND_EXCEEDS_CAPTURED"
    assert [r.id for r in await refunds_at_stripe(sandbox, payment.payment_intent_id)] == [
        retried.refund.id
    ]
    assert retried.refund.amount == 1000


async def test_with_webhooks_off_the_sweep_alone_brings_a_dashboard_refund_in(
    environ: dict[str, str], pg_dsn: str, stub: Stub, sandbox: Sandbox
) -> None:
    env = {
        **environ,
        "DATABASE_URL": pg_dsn,
        "STRIPE_WEBHOOK_SECRET": "",
        "SWEEP_INTERVAL_SECONDS": "0.2",
        "SWEEP_QUIET_SECONDS": "0",
    }
    sandbox.control("POST", "/_sandbox/webhooks/pause")
    try:
        async with service_process(env) as replica:
            session = await paid_order(replica.stub, sandbox)
            first = await replica.stub.RefundPayment(refund(session.order_id, 100))
            await sandbox.client.v1.refunds.create_async(
                {"payment_intent": first.session.payment.payment_intent_id, "amount": 250}
            )

            async def brought_in() -> bool:
                return (await stored(replica.stub, session.order_id)).payment.amount_refunded == 350

            await eventually(brought_in)
    finally:
        sandbox.control("POST", "/_sandbox/webhooks/resume")


async def test_a_refund_done_whose_payment_was_not_stored_is_answered_with_its_refund(
    environ: dict[str, str], pg_dsn: str, stub: Stub, sandbox: Sandbox, db: asyncpg.Pool
) -> None:
    session = await paid_order(stub, sandbox)
    payment = await until_payment(stub, session.order_id, status=pay.Payment.SUCCEEDED)
    request = refund(session.order_id, 900)
    env = {**environ, "DATABASE_URL": pg_dsn}
    sandbox.control("POST", "/_sandbox/webhooks/pause")
    try:
        async with service_process({**env, "CHECKOUT_FAULT": CRASH_AFTER_STRIPE_REFUND}) as doomed:
            with suppress(grpc.aio.AioRpcError):
                await doomed.stub.RefundPayment(request)
            await doomed.process.wait()
        [made] = await refunds_at_stripe(sandbox, payment.payment_intent_id)
        # As a call leaves it that recorded Stripe's answer and then lost the database before
        # it stored the payment (Postgres restarting, its deadline passing).
        await db.execute(
            """UPDATE payment_operations SET state = 'succeeded', refund_id = $2
               WHERE request_id = $1""",
            request.request_id,
            made.id,
        )
        retried = await stub.RefundPayment(request)
    finally:
        sandbox.control("POST", "/_sandbox/webhooks/resume")

    assert (retried.refund.id, retried.refund.amount) == (made.id, 900)
    assert retried.session.payment.amount_refunded == 900
    assert [r.id for r in retried.session.payment.refunds] == [made.id]

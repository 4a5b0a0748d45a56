"""What every capture, cancel and refund gets at the edge, whatever its outcome: one log line with
the caller, the order and the amount, and a count by caller, operation and outcome (the final
gRPC code). Money moves rarely and matters much: these lines are written at `info` (`warning`
when refused or failed), unlike the access log of other successful calls."""

from __future__ import annotations

import structlog
from google.rpc import code_pb2

from service.domain.errors import CheckoutError
from service.domain.model import Caller
from service.domain.payment_model import MoneyCommand
from service.domain.payments import MoneyResult, Payments
from service.edge.status import code_for
from service.observability.metrics import Metrics

log = structlog.get_logger("payments")


class PaymentCalls:
    def __init__(self, payments: Payments, metrics: Metrics) -> None:
        self._payments = payments
        self._metrics = metrics

    async def move(self, caller: Caller, cmd: MoneyCommand) -> MoneyResult:
        try:
            result = await self._payments.move(caller, cmd)
        except CheckoutError as exc:
            self._told(caller, cmd, code_pb2.Code.Name(code_for(exc)), reason=exc.reason)
            raise
        except Exception:
            self._told(caller, cmd, code_pb2.Code.Name(code_pb2.INTERNAL), reason="INTERNAL")
            raise
        entry, op = result.entry, result.operation
        self._metrics.payment_operations.labels(caller.name, cmd.kind.value, "OK").inc()
        log.info(
            "payment operation",
            operation=cmd.kind.value,
            caller=caller.name,
            order_id=entry.order_id,
            session_id=entry.session_id,
            request_id=cmd.request_id,
            amount=None if op is None else op.amount,
            currency=None if entry.payment is None else entry.payment.currency,
            refund_id=None if result.refund is None else result.refund.id,
            code="OK",
        )
        return result

    def _told(self, caller: Caller, cmd: MoneyCommand, code: str, *, reason: str) -> None:
        self._metrics.payment_operations.labels(caller.name, cmd.kind.value, code).inc()
        log.warning(
            "payment operation",
            operation=cmd.kind.value,
            caller=caller.name,
            order_id=_shown(cmd.order_id),
            session_id=_shown(cmd.session_id),
            request_id=_shown(cmd.request_id),
            amount=cmd.amount,
            code=code,
            reason=reason,
        )


def _shown(value: str) -> str | None:
    """A value the caller sent, as a refused call's line shows it: bounded, since it may be
    what was refused."""
    return value[:_SHOWN_MAX] or None


_SHOWN_MAX = 255

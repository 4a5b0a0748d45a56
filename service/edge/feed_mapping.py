"""Proto ↔ domain for the event feed: pure functions. Event types travel as the domain's strings
(service/domain/outcomes.py); the session inside an event is rendered as every Session is
(mapping.session_message), by the servicer."""

from __future__ import annotations

from checkout.v1 import event_pb2 as events
from checkout.v1 import session_pb2 as pb
from service.domain.feed import FeedItem, FeedQuery
from service.domain.outcomes import EventType

_EVENT_TYPES = {
    events.Event.ORDER_PAID: EventType.ORDER_PAID,
    events.Event.PAYMENT_PROCESSING: EventType.PAYMENT_PROCESSING,
    events.Event.PAYMENT_FAILED: EventType.PAYMENT_FAILED,
    events.Event.SESSION_EXPIRED: EventType.SESSION_EXPIRED,
    events.Event.PAYMENT_AUTHORIZED: EventType.PAYMENT_AUTHORIZED,
    events.Event.PAYMENT_CAPTURED: EventType.PAYMENT_CAPTURED,
    events.Event.AUTHORIZATION_RELEASED: EventType.AUTHORIZATION_RELEASED,
    events.Event.PAYMENT_REFUNDED: EventType.PAYMENT_REFUNDED,
    events.Event.REFUND_FAILED: EventType.REFUND_FAILED,
    events.Event.DISPUTE_OPENED: EventType.DISPUTE_OPENED,
    events.Event.DISPUTE_CLOSED: EventType.DISPUTE_CLOSED,
}
_EVENT_TYPES_OUT = {v.value: k for k, v in _EVENT_TYPES.items()}


def feed_query(
    request: events.StreamEventsRequest | events.ListEventsRequest,
) -> FeedQuery:
    """A type this contract does not know (a number from a newer client) becomes None, which
    the use case refuses by its index."""
    return FeedQuery(
        after=request.after,
        types=tuple(_EVENT_TYPES.get(kind) for kind in request.types),
        caller=request.caller,
    )


def event_message(item: FeedItem, session: pb.Session) -> events.Event:
    """The event as a caller sees it, around its session as rendered for that caller. A type a
    newer replica wrote is TYPE_UNSPECIFIED here, for the caller to skip."""
    event = item.event
    message = events.Event(
        id=str(event.id),
        cursor=item.cursor,
        type=_EVENT_TYPES_OUT.get(event.type, events.Event.TYPE_UNSPECIFIED),
        order_id=event.order_id,
        session=session,
        refund_id=event.refund_id or "",
    )
    message.create_time.FromDatetime(event.created_at)
    return message

"""Stripe list objects and cursor pagination (`limit`, `starting_after`, `ending_before`)."""

import operator
from collections.abc import Callable, Sequence
from typing import Any

from .errors import parameters_exclusive, resource_missing
from .params import LIST_LIMIT_DEFAULT


def list_object(url: str, data: list[Any], has_more: bool) -> dict[str, Any]:
    return {"object": "list", "data": data, "has_more": has_more, "url": url}


def paginate(
    items: Sequence[dict[str, Any]],
    params: dict[str, Any],
    url: str,
    kind: str,
    keep: Callable[[dict[str, Any]], bool] = lambda item: True,
) -> dict[str, Any]:
    """One page of the `items` that `keep` accepts, as a Stripe list object.

    `items` is the whole collection in list order, so a cursor may name an object the filters
    exclude, as on Stripe. `starting_after` pages forward; `ending_before` returns the `limit`
    items just before the cursor, still in list order.
    """
    limit: int = params.get("limit", LIST_LIMIT_DEFAULT)
    after, before = params.get("starting_after"), params.get("ending_before")
    if after is not None and before is not None:
        raise parameters_exclusive("ending_before", "starting_after")
    if before is not None:
        end = _position(items, before, "ending_before", kind)
        earlier = [item for item in items[:end] if keep(item)]
        return list_object(url, earlier[-limit:], len(earlier) > limit)
    start = 0 if after is None else _position(items, after, "starting_after", kind) + 1
    later = [item for item in items[start:] if keep(item)]
    return list_object(url, later[:limit], len(later) > limit)


def _position(items: Sequence[dict[str, Any]], cursor: str, param: str, kind: str) -> int:
    for index, item in enumerate(items):
        if item["id"] == cursor:
            return index
    raise resource_missing(kind, cursor, param)


_COMPARISONS: dict[str, Callable[[int, int], bool]] = {
    "eq": operator.eq,
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}


def in_range(value: int, bounds: dict[str, int] | None) -> bool:
    """Whether `value` passes a `params.Range` filter (None: no filter)."""
    if bounds is None:
        return True
    return all(_COMPARISONS[name](value, bound) for name, bound in bounds.items())

"""What a resource module sees of a request, and how it declares its routes and expansions."""

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .clock import Clock
from .errors import invalid
from .store import Store

# The API version stripe-python 16.1.0 pins: echoed when a request names none, and the version
# of every event the sandbox creates.
API_VERSION = "2026-10-28.endive"

# Builds the expanded value of one field from its parent object: `(store, parent) -> value`.
Expander = Callable[[Store, dict[str, Any]], Any]


@dataclass(frozen=True)
class ApiRequest:
    params: dict[str, Any]
    """Decoded but untyped parameters; each handler parses them with its own schema."""
    path: Mapping[str, str]
    store: Store
    clock: Clock
    origin: str
    """`scheme://host:port` the request came in on, for URLs the sandbox hands out."""
    expanders: Mapping[tuple[str, str], Expander]
    request_id: str
    idempotency_key: str | None
    """The `Idempotency-Key` header of a POST; events name it with the request id."""

    def render(self, value: dict[str, Any], expand: list[str]) -> dict[str, Any]:
        """A copy of a stored object (or list) with the requested `expand[]` paths filled in."""
        result = copy.deepcopy(value)
        for path in expand:
            self._expand(result, path.split("."), path, result, "")
        return result

    def _expand(
        self,
        value: dict[str, Any],
        segments: list[str],
        path: str,
        owner: dict[str, Any],
        prefix: str,
    ) -> None:
        """Expand `segments` inside `value`, a Stripe object or a plain hash within `owner`.

        Expanders are keyed by the owning object's type and the field's dotted path from it,
        so `total_details.breakdown` on a session is `("checkout.session",
        "total_details.breakdown")`.
        """
        if "object" in value:
            owner, prefix = value, ""
        head, rest = segments[0], segments[1:]
        if value.get("object") == "list" and head == "data":
            for item in value["data"]:
                if rest:
                    self._expand(item, rest, path, item, "")
            return
        current = value.get(head)
        expander = self.expanders.get((owner.get("object", ""), prefix + head))
        if current is None and rest and expander is None and head in value:
            # A null object on the path (`total_details` of a setup session): nothing in it to
            # expand, and Stripe answers the null as it is.
            return
        if not isinstance(current, dict):
            if expander is None:
                raise invalid(f"This property cannot be expanded ({path}).", "expand")
            # A copy: expanding inside it (`latest_charge.payment_intent`) must not change
            # the stored object.
            current = value[head] = copy.deepcopy(expander(self.store, owner))
        if rest and isinstance(current, dict):
            self._expand(current, rest, path, owner, f"{prefix}{head}.")


def reference(kind: str, field: str) -> Expander:
    """The expander of a field that holds the id of a stored object of `kind` (or null)."""

    def expand(store: Store, parent: dict[str, Any]) -> Any:
        return None if parent[field] is None else store.get(kind, parent[field])

    return expand


Handler = Callable[[ApiRequest], dict[str, Any]]


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    """An aiohttp path pattern; its `{name}`s match Stripe's own path parameter names."""
    handler: Handler

"""Stripe's form encoding: `line_items[0][price_data][currency]=usd` into nested values.

Bracketed keys become nested dicts; `key[]` appends to a list. Indexed arrays (`expand[0]=…`)
stay dicts keyed by the index text here, as in the Rack-style parser Stripe runs: only the
parameter's schema knows whether `metadata[0]` is a hash key or `line_items[0]` a list element,
so `params.Array` turns index-keyed dicts into lists. Values stay strings until the schema
coerces them.
"""

from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl

from .errors import invalid


def decode(raw: str) -> dict[str, Any]:
    """Decode a query string or an `application/x-www-form-urlencoded` body."""
    return decode_pairs(parse_qsl(raw, keep_blank_values=True))


def decode_pairs(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for key, value in pairs:
        _assign(root, key, split_key(key), value)
    return root


def split_key(key: str) -> list[str]:
    """`a[b][0]` -> `["a", "b", "0"]`; brackets nest, so `metadata[x[y]]` -> `["metadata", "x[y]"]`.

    Keeping a bracketed metadata key whole lets the metadata rules refuse it with Stripe's
    message instead of it silently turning into a nested hash. Keys that are not bracket groups
    after a name stay one opaque name, which then fails as an unknown parameter.
    """
    head, bracket, _ = key.partition("[")
    if not bracket or not head or "]" in head:
        return [key]
    segments = [head]
    index = len(head)
    while index < len(key):
        if key[index] != "[":
            return [key]
        depth, end = 0, index
        for end in range(index, len(key)):
            if key[end] == "[":
                depth += 1
            elif key[end] == "]":
                depth -= 1
                if depth == 0:
                    break
        if depth != 0:
            return [key]
        segments.append(key[index + 1 : end])
        index = end + 1
    return segments


def _assign(node: dict[str, Any], key: str, segments: list[str], value: str) -> None:
    name, rest = segments[0], segments[1:]
    if not rest:
        node[name] = value
        return
    if rest[0] == "":
        items = node.setdefault(name, [])
        if not isinstance(items, list):
            raise invalid(f"Invalid array: {key} mixes list and hash syntax", _param(segments))
        _append(items, key, rest[1:], value)
        return
    child = node.get(name)
    # A blank scalar means "unset"; a later nested value for the same key wins over it.
    if child is None or child == "":
        child = node[name] = {}
    if not isinstance(child, dict):
        raise invalid(f"Invalid hash: {key} is given both as a value and as a hash", name)
    _assign(child, key, rest, value)


def _append(items: list[Any], key: str, rest: list[str], value: str) -> None:
    if not rest:
        items.append(value)
        return
    # `a[][x]=1&a[][y]=2` fills one element until a key repeats, as Rack does.
    last = items[-1] if items else None
    if not isinstance(last, dict) or rest[0] in last:
        last = {}
        items.append(last)
    _assign(last, key, rest, value)


def _param(segments: list[str]) -> str:
    return segments[0] + "".join(f"[{segment}]" for segment in segments[1:] if segment)

"""Parameter schemas: Stripe's shape checks, applied to decoded form values.

A schema turns the strings of `forms.decode` into typed values and refuses what Stripe refuses
before any endpoint logic runs: unknown parameters (`parameter_unknown`), missing required ones
(`parameter_missing`), empty strings where a value cannot be unset (`parameter_invalid_empty`),
malformed integers (`parameter_invalid_integer`), values outside an enum, over-long strings,
invalid URLs (`url_invalid`) and metadata limits. Error `param`s use Stripe's bracket paths
(`line_items[0][quantity]`).
"""

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from .currencies import CURRENCIES
from .errors import invalid, invalid_empty, parameter_missing, parameter_unknown

# Stripe's metadata limits: https://docs.stripe.com/api/metadata
METADATA_MAX_KEYS = 50
METADATA_KEY_MAX_LENGTH = 40
METADATA_VALUE_MAX_LENGTH = 500
# Lengths from the `maxLength`s of Stripe's OpenAPI description (https://github.com/stripe/openapi):
# any string parameter whose own field says no less, a URL, an email address.
STRING_MAX_LENGTH = 5000
URL_MAX_LENGTH = 5000
EMAIL_MAX_LENGTH = 512
# Stripe names countries by their two-letter ISO 3166-1 alpha-2 codes.
COUNTRY_CODE_LENGTH = 2
# A list request's `limit`: between 1 and 100, 10 when absent (https://docs.stripe.com/api/pagination).
LIST_LIMIT_MAX = 100
LIST_LIMIT_DEFAULT = 10

_INTEGER = re.compile(r"-?\d+")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_DECIMAL = re.compile(r"-?\d+(\.\d+)?")


def child(path: str, name: str | int) -> str:
    return f"{path}[{name}]" if path else str(name)


class Spec(ABC):
    @abstractmethod
    def coerce(self, value: Any, path: str) -> Any:
        """Return the typed value, or None when an empty value unsets an optional parameter."""


class _Scalar(Spec):
    def coerce(self, value: Any, path: str) -> Any:
        if not isinstance(value, str):
            raise invalid(f"Invalid {self._noun()}: {path} must be a {self._noun()}", path)
        if value == "":
            raise invalid_empty(path)
        return self._convert(value, path)

    @abstractmethod
    def _noun(self) -> str: ...

    @abstractmethod
    def _convert(self, value: str, path: str) -> Any: ...


@dataclass(frozen=True)
class Text(_Scalar):
    max_length: int = STRING_MAX_LENGTH
    non_blank: bool = False

    def _noun(self) -> str:
        return "string"

    def _convert(self, value: str, path: str) -> Any:
        if self.non_blank and not value.strip():
            raise invalid(
                f"Invalid string: {path} cannot be blank", path, "parameter_invalid_string_blank"
            )
        if len(value) > self.max_length:
            shown = value if len(value) <= 20 else f"{value[:10]}...{value[-10:]}"
            raise invalid(
                f"Invalid string: {shown}; must be at most {self.max_length} characters", path
            )
        return value


@dataclass(frozen=True)
class Choice(_Scalar):
    values: tuple[str, ...]

    def _noun(self) -> str:
        return "string"

    def _convert(self, value: str, path: str) -> Any:
        if value not in self.values:
            *head, last = self.values
            options = f"{', '.join(head)}, or {last}" if head else last
            raise invalid(f"Invalid {path}: must be one of {options}", path)
        return value


@dataclass(frozen=True)
class Integer(_Scalar):
    minimum: int | None = None
    maximum: int | None = None

    def _noun(self) -> str:
        return "integer"

    def _convert(self, value: str, path: str) -> Any:
        if not _INTEGER.fullmatch(value):
            raise invalid(f"Invalid integer: {value}", path, "parameter_invalid_integer")
        number = int(value)
        if self.minimum is not None and number < self.minimum:
            raise invalid(
                f"This value must be greater than or equal to {self.minimum}.",
                path,
                "parameter_invalid_integer",
            )
        if self.maximum is not None and number > self.maximum:
            raise invalid(
                f"This value must be less than or equal to {self.maximum}.",
                path,
                "parameter_invalid_integer",
            )
        return number


@dataclass(frozen=True)
class Number(_Scalar):
    """A decimal such as `percent_off=12.5`, kept exact for the money arithmetic."""

    minimum: Decimal | None = None
    maximum: Decimal | None = None

    def _noun(self) -> str:
        return "decimal"

    def _convert(self, value: str, path: str) -> Any:
        try:
            number = Decimal(value) if _DECIMAL.fullmatch(value) else None
        except InvalidOperation:
            number = None
        if number is None:
            raise invalid(f"Invalid decimal: {value}", path)
        if (self.minimum is not None and number < self.minimum) or (
            self.maximum is not None and number > self.maximum
        ):
            raise invalid(
                f"Invalid {path}: must be between {self.minimum} and {self.maximum}", path
            )
        return number


class Boolean(_Scalar):
    def _noun(self) -> str:
        return "boolean"

    def _convert(self, value: str, path: str) -> Any:
        if value not in ("true", "false"):
            raise invalid(f"Invalid boolean: {value}", path)
        return value == "true"


class Url(_Scalar):
    def _noun(self) -> str:
        return "string"

    def _convert(self, value: str, path: str) -> Any:
        if len(value) > URL_MAX_LENGTH:
            raise invalid(
                f"Invalid URL: URL must be {URL_MAX_LENGTH} characters or less.",
                path,
                "url_invalid",
            )
        parts = urlsplit(value)
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or any(c.isspace() for c in value)
        ):
            raise invalid("Not a valid URL", path, "url_invalid")
        return value


class Email(_Scalar):
    def _noun(self) -> str:
        return "string"

    def _convert(self, value: str, path: str) -> Any:
        if len(value) > EMAIL_MAX_LENGTH or not _EMAIL.fullmatch(value):
            raise invalid(
                f"Invalid email address: {value[:EMAIL_MAX_LENGTH]}", path, "email_invalid"
            )
        return value


class Currency(_Scalar):
    def _noun(self) -> str:
        return "string"

    def _convert(self, value: str, path: str) -> Any:
        code = value.lower()
        if code not in CURRENCIES:
            raise invalid(
                f"Invalid currency: {value}. Stripe currently supports these currencies: "
                + ", ".join(sorted(CURRENCIES)),
                path,
            )
        return code


class Metadata(Spec):
    """Stripe's metadata rules: ≤50 keys, keys ≤40 chars without brackets, values ≤500 chars.

    Empty values unset keys, and an empty `metadata` unsets all of them
    (https://docs.stripe.com/api/metadata).
    """

    def coerce(self, value: Any, path: str) -> Any:
        if value == "":
            return {}
        if not isinstance(value, dict):
            raise invalid(f"Invalid hash: {path} must be a hash of strings", path)
        result: dict[str, str] = {}
        for key, item in value.items():
            key_path = child(path, key)
            if "[" in key or "]" in key:
                raise invalid(
                    f"Metadata keys cannot contain '[' or ']'. Invalid key: {key}", key_path
                )
            if len(key) > METADATA_KEY_MAX_LENGTH:
                raise invalid(
                    f"Metadata keys can have up to {METADATA_KEY_MAX_LENGTH} characters, but you "
                    f"passed in a key that is {len(key)} characters. Invalid key: {key}",
                    key_path,
                )
            if not isinstance(item, str):
                raise invalid(f"Invalid metadata value: {key_path} must be a string", key_path)
            if len(item) > METADATA_VALUE_MAX_LENGTH:
                raise invalid(
                    f"Metadata values can have up to {METADATA_VALUE_MAX_LENGTH} characters, but "
                    f"you passed in a value that is {len(item)} characters. Invalid value: "
                    f"{item[:40]}...",
                    key_path,
                )
            if item:
                result[key] = item
        if len(result) > METADATA_MAX_KEYS:
            raise invalid(
                f"Metadata can have up to {METADATA_MAX_KEYS} keys, but you passed in "
                f"{len(result)} keys.",
                path,
            )
        return result


def updated_metadata(current: dict[str, str], raw: Any) -> dict[str, str]:
    """Stripe's metadata update, from the raw (checked) parameter: an empty value unsets its
    key, an empty hash unsets them all."""
    if raw == "":
        return {}
    merged = {**current, **raw}
    return {key: value for key, value in merged.items() if value != ""}


@dataclass(frozen=True)
class Array(Spec):
    item: Spec
    max_items: int | None = None

    def coerce(self, value: Any, path: str) -> Any:
        if value == "":
            return []
        if isinstance(value, dict) and all(_INTEGER.fullmatch(k) for k in value):
            # `line_items[0]`, `line_items[1]`: indices give the order, as in Stripe.
            value = [value[k] for k in sorted(value, key=int)]
        if not isinstance(value, list):
            raise invalid(f"Invalid array: {path} must be an array", path)
        if self.max_items is not None and len(value) > self.max_items:
            raise invalid(
                f"Invalid array: {path} can have at most {self.max_items} items, "
                f"but {len(value)} were given",
                path,
            )
        items = [self.item.coerce(item, child(path, index)) for index, item in enumerate(value)]
        return [item for item in items if item is not None]


@dataclass(frozen=True)
class Hash(Spec):
    fields: Mapping[str, Spec]
    required: frozenset[str] = field(default_factory=frozenset)

    def coerce(self, value: Any, path: str) -> Any:
        if value == "":
            return None
        if not isinstance(value, dict):
            raise invalid(f"Invalid hash: {path} must be a hash", path)
        for name in value:
            if name not in self.fields:
                raise parameter_unknown(child(path, name))
        result: dict[str, Any] = {}
        for name, spec in self.fields.items():
            if name in value:
                coerced = spec.coerce(value[name], child(path, name))
                if coerced is not None:
                    result[name] = coerced
            if name in self.required and name not in result:
                raise parameter_missing(child(path, name))
        return result

    def parse(self, value: dict[str, Any]) -> dict[str, Any]:
        """Coerce a whole request's parameters."""
        result: dict[str, Any] = self.coerce(value, "")
        return result


class Range(Spec):
    """A list filter such as `created=123` or `created[gte]=123`, as `{"gte": 123}`."""

    _bound = Integer()
    _operators = ("gt", "gte", "lt", "lte")

    def coerce(self, value: Any, path: str) -> Any:
        if isinstance(value, str):
            return {"eq": self._bound.coerce(value, path)}
        bounds = Hash({operator: self._bound for operator in self._operators}).coerce(value, path)
        return bounds or None


def hash_of(*required: str, **fields: Spec) -> Hash:
    """`hash_of("name", name=Text(), description=Text())`: the required names, then the fields."""
    return Hash(fields, frozenset(required))


EXPAND = Array(Text())
LIST_PARAMS: dict[str, Spec] = {
    "limit": Integer(1, LIST_LIMIT_MAX),
    "starting_after": Text(),
    "ending_before": Text(),
    "expand": EXPAND,
    "created": Range(),
}

"""API key checks, as Stripe answers them: only test-mode secret keys (`sk_test_…`) and
restricted keys (`rk_test_…`, https://docs.stripe.com/keys#limit-access) get in; what a
restricted key may do is `restricted_keys.py`'s business."""

import base64
import binascii
import re

from .errors import StripeError

_VALID = re.compile(r"(sk|rk)_test_[A-Za-z0-9_]+")
_KNOWN_PREFIX = re.compile(r"(sk|pk|rk)_(test|live)_")


def authenticate(authorization: str | None) -> str:
    """The key of `Bearer sk_test_…` or `Bearer rk_test_…` (or of HTTP Basic with the key as
    user, as curl's `-u` sends); refuses anything else."""
    if not authorization:
        raise StripeError(
            "You did not provide an API key. You need to provide your API key in the "
            "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
            "YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, or "
            "we can help at https://support.stripe.com/.",
            status=401,
        )
    scheme, _, credential = authorization.strip().partition(" ")
    key = credential.strip()
    if scheme.lower() == "basic":
        key = _basic_user(key)
    elif scheme.lower() != "bearer":
        raise StripeError(f"Invalid API Key provided: {mask(authorization.strip())}", status=401)
    if not _VALID.fullmatch(key):
        raise StripeError(f"Invalid API Key provided: {mask(key)}", status=401)
    return key


def mask(key: str) -> str:
    """Stripe's way of naming a key in an error: its prefix and last four characters at most."""
    prefix = match.group(0) if (match := _KNOWN_PREFIX.match(key)) else ""
    secret = key[len(prefix) :]
    # Short secrets keep no tail: four characters of eight would give half of it away.
    tail = secret[-4:] if len(secret) > 12 else ""
    return prefix + "*" * (len(secret) - len(tail)) + tail


def _basic_user(credential: str) -> str:
    try:
        decoded = base64.b64decode(credential, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return credential
    return decoded.partition(":")[0]

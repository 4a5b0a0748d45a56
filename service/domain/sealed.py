"""Opaque tokens the service hands out and reads back (ListSessions page tokens, event feed
cursors), sealed with AES-GCM, an authenticated encryption
(https://csrc.nist.gov/pubs/sp/800/38/d/final): a token reveals nothing of what it holds, and
what it was issued for (its caller, its order) is its associated data, so that a token edited,
forged, or replayed by another caller fails to open instead of steering a query.

Each kind of token has a key of its own, derived (HKDF, https://www.rfc-editor.org/rfc/rfc5869)
from the one a migration stored in Postgres, so every replica reads every replica's tokens and a
token of one kind never opens as another. Each token has a random 96-bit nonce.
"""

from __future__ import annotations

import base64
import binascii
import json
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_NONCE_BYTES = 12


class Unopened(Exception):
    """Not a token this sealer issued for this associated data."""


class Sealer:
    def __init__(self, key: bytes, *, purpose: bytes) -> None:
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(key)
        self._aead = AESGCM(derived)

    def seal(self, plain: bytes, *bound_to: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plain, _associated(bound_to))
        return base64.urlsafe_b64encode(nonce + sealed).decode("ascii").rstrip("=")

    def open(self, token: str, *bound_to: str) -> bytes:
        try:
            raw = base64.urlsafe_b64decode(token.encode("ascii") + b"==")
            nonce, sealed = raw[:_NONCE_BYTES], raw[_NONCE_BYTES:]
            return self._aead.decrypt(nonce, sealed, _associated(bound_to))
        except (ValueError, binascii.Error, UnicodeError, InvalidTag) as exc:
            raise Unopened from exc


def _associated(bound_to: tuple[str, ...]) -> bytes:
    """What a token was issued for, unambiguously encoded: ("a", "bc") is not ("ab", "c")."""
    return json.dumps(list(bound_to), separators=(",", ":")).encode()

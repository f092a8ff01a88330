"""Card data at rest (SPEC §8, §13): sealed under BILLING_CARD_DATA_KEY, opened only in memory.

Each secret (a card number with its expiry, a card token, sender details) is a compact JWE,
`dir` + `A256GCM`, under the 32-byte key from settings. The protected header (authenticated,
not secret) carries `kid`, a fingerprint naming the key without revealing it, and `ctx`, the
fulfillment the secret belongs to: a ciphertext copied onto another row does not open there.

    VaultError
    ├── CardDataKeyMissing   BILLING_CARD_DATA_KEY is not set
    └── CardDataUnreadable   wrong key, another row's ciphertext, or tampered

A CVV is refused here whatever its key name: it is never stored (SPEC §13).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping

from jwcrypto import jwe, jwk
from jwcrypto.common import JWException

KEY_VARIABLE = "BILLING_CARD_DATA_KEY"
_ALG, _ENC = "dir", "A256GCM"
_CVV_KEYS = frozenset({"cardsecuritycode", "securitycode", "security_code", "cvv", "cvc"})


class VaultError(Exception):
    """Card data could not be sealed or opened; the message never holds card data."""


class CardDataKeyMissing(VaultError):  # noqa: N818 (the tree's names, as in the gateway)
    def __init__(self) -> None:
        super().__init__(
            f"{KEY_VARIABLE}: required to store or read card data "
            "(the URL-safe base64 of 32 random bytes)"
        )


class CardDataUnreadable(VaultError):  # noqa: N818 (the same)
    """The ciphertext does not open with this key for this row."""


def _decode_key(text: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise VaultError(f"{KEY_VARIABLE}: not URL-safe base64") from None
    if len(key) != 32:
        raise VaultError(f"{KEY_VARIABLE}: expected 32 bytes once decoded, got {len(key)}")
    return key


class CardVault:
    """Seals and opens JSON secrets; one per process, thread-safe (no mutable state)."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise VaultError(f"{KEY_VARIABLE}: expected 32 bytes, got {len(key)}")
        encoded = base64.urlsafe_b64encode(key).rstrip(b"=").decode("ascii")
        self._key = jwk.JWK(kty="oct", k=encoded)
        self.key_id = hashlib.sha256(b"billing-card-data:" + key).hexdigest()[:16]

    @classmethod
    def from_text(cls, text: str) -> CardVault:
        """From the setting's value (URL-safe base64 of 32 bytes)."""
        return cls(_decode_key(text.strip()))

    def __repr__(self) -> str:
        return f"CardVault(kid={self.key_id!r})"

    def seal(self, secret: Mapping[str, object], *, context: str) -> str:
        """The compact JWE of `secret` (JSON), bound to `context` (the fulfillment id)."""
        _refuse_cvv(secret)
        content = json.dumps(secret, separators=(",", ":"), ensure_ascii=False).encode()
        header = {"alg": _ALG, "enc": _ENC, "kid": self.key_id, "ctx": context}
        token = jwe.JWE(content, protected=json.dumps(header, separators=(",", ":")))
        token.add_recipient(self._key)
        return str(token.serialize(compact=True))

    def open(self, sealed: str, *, context: str) -> dict[str, object]:
        """The secret sealed for `context`; `CardDataUnreadable` for anything else."""
        token = jwe.JWE()
        try:
            token.deserialize(sealed)
            header = token.jose_header
        except (JWException, ValueError, TypeError):
            raise CardDataUnreadable("card data: not a sealed value") from None
        if header.get("alg") != _ALG or header.get("enc") != _ENC:
            raise CardDataUnreadable("card data: unexpected algorithm")
        if header.get("kid") != self.key_id:
            raise CardDataUnreadable(
                f"card data: sealed with another key (kid {header.get('kid')}), "
                f"not the current {KEY_VARIABLE} (kid {self.key_id})"
            )
        if header.get("ctx") != context:
            raise CardDataUnreadable("card data: sealed for another record")
        try:
            token.decrypt(self._key)
            value = json.loads(token.payload)
        except (JWException, ValueError, TypeError):
            raise CardDataUnreadable("card data: does not decrypt (tampered?)") from None
        if not isinstance(value, dict):
            raise CardDataUnreadable("card data: not an object")
        return value


def _refuse_cvv(secret: Mapping[str, object]) -> None:
    for name, value in secret.items():
        if name.lower() in _CVV_KEYS:
            raise VaultError("a CVV is never stored")
        if isinstance(value, Mapping):
            _refuse_cvv(value)


def vault_from_setting(text: str | None) -> CardVault | None:
    """The vault for BILLING_CARD_DATA_KEY, or None when it is not set."""
    return None if text is None else CardVault.from_text(text)

"""The sandbox's side of the Attempt API encryption, written from Juspay's encryption guide.

The sandbox plays Juspay: it owns an RSA key pair (generated at start unless one is given) whose
public half merchants encrypt to, and optionally holds the merchant's public key to verify an
RS256 signature nested inside the JWE (a compact JWS as the JWE plaintext, `cty: JWT`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from jwcrypto import jwe, jwk, jws
from jwcrypto.common import JWException

ALLOWED_ALGS = [
    "RSA-OAEP",
    "RSA-OAEP-256",
    "A128CBC-HS256",
    "A192CBC-HS384",
    "A256CBC-HS512",
    "A128GCM",
    "A192GCM",
    "A256GCM",
]


class AttemptRefused(Exception):  # noqa: N818 (carries the E01 message)
    """The payload cannot be opened or verified; the message goes into the E01 answer."""


@dataclass(frozen=True)
class Opened:
    header: dict[str, Any]
    plaintext: dict[str, Any]
    signed: bool


class SandboxKeys:
    def __init__(self, private_pem: bytes | None = None) -> None:
        if private_pem is None:
            self._private = jwk.JWK.generate(kty="RSA", size=2048)
        else:
            self._private = jwk.JWK.from_pem(private_pem)
        self.merchant_public: jwk.JWK | None = None

    @property
    def public_pem(self) -> bytes:
        return bytes(self._private.export_to_pem(private_key=False))

    @property
    def private_pem(self) -> bytes:
        return bytes(self._private.export_to_pem(private_key=True, password=None))

    def set_merchant_public(self, pem: bytes | None) -> None:
        """Register (or with None forget) the merchant key that signs payloads."""
        self.merchant_public = None if pem is None else jwk.JWK.from_pem(pem)

    def open(self, token: str) -> Opened:
        """Decrypt a compact JWE (and verify the nested JWS when a merchant key is set)."""
        envelope = jwe.JWE(algs=ALLOWED_ALGS)
        try:
            envelope.deserialize(token, key=self._private)
        except (JWException, ValueError, KeyError, TypeError) as exc:
            raise AttemptRefused(f"Unable to decrypt payload: {type(exc).__name__}") from None
        header = dict(envelope.jose_header)
        content = bytes(envelope.payload)
        nested = header.get("cty") == "JWT" or (content.count(b".") == 2 and content[:1] != b"{")
        if self.merchant_public is not None and not nested:
            raise AttemptRefused("Payload must be signed with the merchant key")
        if nested:
            if self.merchant_public is None:
                raise AttemptRefused("Signed payload but no merchant public key is registered")
            signed = jws.JWS()
            try:
                signed.deserialize(content.decode(), key=self.merchant_public, alg="RS256")
            except (JWException, ValueError, UnicodeDecodeError) as exc:
                raise AttemptRefused(f"Invalid signature: {type(exc).__name__}") from None
            content = bytes(signed.payload)
        try:
            plaintext = json.loads(content)
        except (ValueError, UnicodeDecodeError):
            raise AttemptRefused("Payload is not JSON") from None
        if not isinstance(plaintext, dict):
            raise AttemptRefused("Payload is not a JSON object")
        return Opened(header=header, plaintext=plaintext, signed=nested)

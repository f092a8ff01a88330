"""The sandbox's side of the Attempt API encryption, written from Juspay's payout encryption
guide (juspay-api.md §6.5): the merchant encrypts the JSON as a JWE with Juspay's public key and
may then sign the result with its own key (JWS RS256): signing comes after encryption.

The sandbox plays Juspay: it owns an RSA key pair (generated at start unless one is given) whose
public half merchants encrypt to, and optionally holds the merchant's public key. With it, every
`payload` must be a compact JWS whose payload is the compact JWE; the signature is verified
first, then the JWE is decrypted. A bare JWE is refused then, and so is the other order (a JWS
inside the JWE: signed, then encrypted) whether or not a key is registered. Signature problems
are Juspay's `E03` ("Invalid Signature"), the rest `E01`.
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


class AttemptRefused(Exception):  # noqa: N818 (carries the E01 / E03 message)
    """The payload cannot be opened or verified; the message goes into the answer."""

    def __init__(self, message: str, code: str = "E01") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Opened:
    header: dict[str, Any]  # the JWE's protected header
    plaintext: dict[str, Any]
    signed: bool
    signature_header: dict[str, Any] | None = None  # the JWS's, when signed


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
        """Verify the signature over the JWE when the payload is signed (and require it when a
        merchant key is registered), then decrypt the JWE."""
        parts = token.count(".") + 1
        signature_header = None
        if parts == 3:  # a compact JWS: signed after encryption
            if self.merchant_public is None:
                raise AttemptRefused("Invalid Signature: no merchant key registered for sid", "E03")
            signed = jws.JWS()
            try:
                signed.deserialize(token, key=self.merchant_public, alg="RS256")
            except (JWException, ValueError, TypeError) as exc:
                raise AttemptRefused(f"Invalid Signature: {type(exc).__name__}", "E03") from None
            signature_header = dict(signed.jose_header)
            token = bytes(signed.payload).decode("ascii", "replace")
            if token.count(".") != 4:
                raise AttemptRefused("The signed payload must be the compact JWE", "E03")
        elif parts != 5:
            raise AttemptRefused("payload: expected a compact JWE (or a JWS over one)")
        envelope = jwe.JWE(algs=ALLOWED_ALGS)
        try:
            envelope.deserialize(token, key=self._private)
        except (JWException, ValueError, KeyError, TypeError) as exc:
            raise AttemptRefused(f"Unable to decrypt payload: {type(exc).__name__}") from None
        header = dict(envelope.jose_header)
        content = bytes(envelope.payload)
        if header.get("cty") == "JWT" or (content.count(b".") == 2 and content[:1] != b"{"):
            raise AttemptRefused(
                "Invalid Signature: signed before encryption; sign the JWE instead", "E03"
            )
        if signature_header is None and self.merchant_public is not None:
            raise AttemptRefused(
                "Invalid Signature: payload must be signed (a JWS over the JWE)", "E03"
            )
        try:
            plaintext = json.loads(content)
        except (ValueError, UnicodeDecodeError):
            raise AttemptRefused("Payload is not JSON") from None
        if not isinstance(plaintext, dict):
            raise AttemptRefused("Payload is not a JSON object")
        return Opened(header, plaintext, signature_header is not None, signature_header)

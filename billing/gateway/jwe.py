"""Encryption of Attempt API payloads, the only jwcrypto import in the gateway.

Juspay's payout encryption guide (`juspay-api.md` §6.5): stringify the JSON, encrypt it as a
JWE with Juspay's public key, then optionally sign *the result* with the merchant's private key
(JWS RS256): signing comes after encryption.

    plain   payload = JWE(plaintext JSON)      header {"alg", "typ": "JWT", "enc", "kid"}
    signed  payload = JWS_RS256(compact JWE)   header {"alg": "RS256", "kid": <sid>}

The guide does not say where the JWS goes *(interpretation)*: we send the compact JWS (whose
payload is the compact JWE, base64url-encoded as RFC 7515 wants) in the body's `payload`, with
`kid` / `sid` beside it as always, so Juspay verifies it with the key registered under `sid` and
then decrypts the JWE inside with its key `kid`. The JWE header follows the Attempt API sample
(`{"alg":"RSA-OAEP","typ":"JWT","enc":"A256CBC-HS512"}`) plus `kid`. Keys load from PEM; a
missing or wrong key is `KeyLoadError`, whose message names the file and the reason, never the
key's content.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from jwcrypto import jwe, jwk, jws

KEY_ALGS = frozenset({"RSA-OAEP", "RSA-OAEP-256"})
CONTENT_ENCS = frozenset(
    {"A128CBC-HS256", "A192CBC-HS384", "A256CBC-HS512", "A128GCM", "A192GCM", "A256GCM"}
)


class KeyLoadError(ValueError):
    """A key file is missing, unreadable or not the RSA key it should be."""


def _load_rsa(pem: bytes, *, what: str, private: bool) -> jwk.JWK:
    try:
        key = jwk.JWK.from_pem(pem)
    except (ValueError, TypeError) as exc:
        raise KeyLoadError(f"{what}: not a PEM key ({type(exc).__name__})") from None
    if key.get("kty") != "RSA":
        raise KeyLoadError(f"{what}: expected an RSA key, got {key.get('kty')}")
    if private and not key.has_private:
        raise KeyLoadError(f"{what}: expected a private key, got a public one")
    if not private:
        # A private PEM given where the public key is expected still works: keep its public half.
        key = jwk.JWK.from_json(key.export_public())
    return key


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise KeyLoadError(f"{what} {path}: file not found") from None
    except OSError as exc:
        raise KeyLoadError(f"{what} {path}: cannot read ({exc.strerror})") from None


class AttemptEncrypter:
    """Turns an Attempt API plaintext into the request body Juspay expects."""

    def __init__(
        self,
        *,
        juspay_public_key_pem: bytes,
        key_id: str,
        merchant_key_id: str,
        alg: str = "RSA-OAEP",
        enc: str = "A256CBC-HS512",
        signing_key_pem: bytes | None = None,
    ) -> None:
        if alg not in KEY_ALGS:
            raise ValueError(f"jwe alg: {alg!r} is not one of {sorted(KEY_ALGS)}")
        if enc not in CONTENT_ENCS:
            raise ValueError(f"jwe enc: {enc!r} is not one of {sorted(CONTENT_ENCS)}")
        self._public = _load_rsa(juspay_public_key_pem, what="Juspay public key", private=False)
        self._signer = (
            _load_rsa(signing_key_pem, what="merchant private key", private=True)
            if signing_key_pem is not None
            else None
        )
        self.key_id = key_id
        self.merchant_key_id = merchant_key_id
        self.alg = alg
        self.enc = enc

    @classmethod
    def from_files(
        cls,
        *,
        public_key_file: Path,
        key_id: str,
        merchant_key_id: str,
        alg: str = "RSA-OAEP",
        enc: str = "A256CBC-HS512",
        private_key_file: Path | None = None,
    ) -> AttemptEncrypter:
        """Load Juspay's public key (and, to sign, the merchant's private key) from PEM files."""
        public_pem = _read(public_key_file, "Juspay public key file")
        _load_rsa(public_pem, what=f"Juspay public key file {public_key_file}", private=False)
        private_pem = None
        if private_key_file is not None:
            private_pem = _read(private_key_file, "merchant private key file")
            _load_rsa(
                private_pem, what=f"merchant private key file {private_key_file}", private=True
            )
        return cls(
            juspay_public_key_pem=public_pem,
            key_id=key_id,
            merchant_key_id=merchant_key_id,
            alg=alg,
            enc=enc,
            signing_key_pem=private_pem,
        )

    @property
    def signs(self) -> bool:
        return self._signer is not None

    def encrypt(self, plaintext: Mapping[str, object]) -> str:
        """The compact JWE of the JSON plaintext, for Juspay's key `kid`."""
        content = json.dumps(plaintext, separators=(",", ":"), ensure_ascii=False).encode()
        header = {"alg": self.alg, "typ": "JWT", "enc": self.enc, "kid": self.key_id}
        token = jwe.JWE(content, protected=json.dumps(header))
        token.add_recipient(self._public)
        return str(token.serialize(compact=True))

    def payload(self, plaintext: Mapping[str, object]) -> str:
        """What goes in the body's `payload`: the JWE, signed after encryption when a signing
        key is set (the compact JWS over the compact JWE)."""
        encrypted = self.encrypt(plaintext)
        if self._signer is None:
            return encrypted
        signed = jws.JWS(encrypted.encode())
        signed.add_signature(
            self._signer,
            alg="RS256",
            protected=json.dumps({"alg": "RS256", "kid": self.merchant_key_id}),
        )
        return str(signed.serialize(compact=True))

    def body(self, plaintext: Mapping[str, object]) -> dict[str, str]:
        """The Attempt API request body: `{payload, kid, sid, format: "compact"}`."""
        return {
            "payload": self.payload(plaintext),
            "kid": self.key_id,
            "sid": self.merchant_key_id,
            "format": "compact",
        }

    def __repr__(self) -> str:
        return (
            f"AttemptEncrypter(kid={self.key_id!r}, sid={self.merchant_key_id!r}, "
            f"alg={self.alg!r}, enc={self.enc!r}, signs={self.signs})"
        )

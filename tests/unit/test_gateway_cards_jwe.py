"""Card values that never show themselves, and the Attempt API encryption (no socket)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jwcrypto import jwe, jwk, jws

from billing.gateway import AttemptEncrypter, CardNumber, CardToken, KeyLoadError


@pytest.fixture(scope="module")
def juspay_key() -> jwk.JWK:
    return jwk.JWK.generate(kty="RSA", size=2048)


@pytest.fixture(scope="module")
def merchant_key() -> jwk.JWK:
    return jwk.JWK.generate(kty="RSA", size=2048)


def test_a_card_number_shows_only_its_last_four_digits_and_never_the_cvv() -> None:
    card = CardNumber(" 5513651111111111", "02", "2028", name="A Kumar", security_code="123")
    shown = repr(card)
    assert shown == (
        "CardNumber(number='************1111', expiry_month='02', expiry_year='2028', "
        "name='A Kumar', security_code='***')"
    )
    assert str(card) == shown
    assert f"{card}" == shown
    assert "5513651111111111" not in shown
    assert "123" not in shown.replace("1111", "")
    assert card.number == "5513651111111111"  # spaces dropped


def test_a_card_token_never_shows() -> None:
    token = CardToken("tok_1111111111111111")
    assert repr(token) == "CardToken(token='***')"
    assert "1111" not in str([token])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("1234", "02", "2028"), "card number"),
        (("5513651111111111", "13", "2028"), "month"),
        (("5513651111111111", "02", "28"), "year"),
        (("5513651111111111", "02", "2028", None, "12"), "security code"),
    ],
)
def test_card_values_are_checked_without_echoing_them(args: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        CardNumber(*args)
    assert args[0] not in str(caught.value)


def test_the_header_is_the_seed_header_plus_kid(juspay_key: jwk.JWK) -> None:
    encrypter = AttemptEncrypter(
        juspay_public_key_pem=juspay_key.export_to_pem(), key_id="JuspayKID", merchant_key_id="S"
    )
    token = encrypter.encrypt({"fulfillmentId": "f1"})
    assert len(token.split(".")) == 5
    opened = jwe.JWE()
    opened.deserialize(token, key=juspay_key)
    header = json.loads(opened.objects["protected"])
    assert header == {"alg": "RSA-OAEP", "typ": "JWT", "enc": "A256CBC-HS512", "kid": "JuspayKID"}
    assert list(header)[:3] == ["alg", "typ", "enc"]  # the seed's order
    assert json.loads(opened.payload) == {"fulfillmentId": "f1"}


@pytest.mark.parametrize(
    ("alg", "enc"), [("RSA-OAEP-256", "A128CBC-HS256"), ("RSA-OAEP", "A256GCM")]
)
def test_alg_and_enc_are_settings(juspay_key: jwk.JWK, alg: str, enc: str) -> None:
    encrypter = AttemptEncrypter(
        juspay_public_key_pem=juspay_key.export_to_pem(),
        key_id="k",
        merchant_key_id="s",
        alg=alg,
        enc=enc,
    )
    opened = jwe.JWE()
    opened.deserialize(encrypter.encrypt({"a": 1}), key=juspay_key)
    assert (opened.jose_header["alg"], opened.jose_header["enc"]) == (alg, enc)


def test_unsupported_algorithms_are_refused(juspay_key: jwk.JWK) -> None:
    pem = juspay_key.export_to_pem()
    with pytest.raises(ValueError, match="alg"):
        AttemptEncrypter(juspay_public_key_pem=pem, key_id="k", merchant_key_id="s", alg="RSA1_5")
    with pytest.raises(ValueError, match="enc"):
        AttemptEncrypter(juspay_public_key_pem=pem, key_id="k", merchant_key_id="s", enc="nope")


def test_a_signed_payload_is_signed_after_encryption_a_jws_over_the_jwe(
    juspay_key: jwk.JWK, merchant_key: jwk.JWK
) -> None:
    """Juspay's payout encryption guide (juspay-api.md §6.5): encrypt with Juspay's public key,
    then sign the result with the merchant's key (RS256). The compact JWS goes in `payload`."""
    encrypter = AttemptEncrypter(
        juspay_public_key_pem=juspay_key.export_to_pem(),
        key_id="JuspayKID",
        merchant_key_id="JuspaySID",
        signing_key_pem=merchant_key.export_to_pem(private_key=True, password=None),
    )
    body = encrypter.body({"fulfillmentId": "f1"})
    assert set(body) == {"payload", "kid", "sid", "format"}
    assert body["payload"].count(".") == 2  # a compact JWS, not a 5-part JWE
    signed = jws.JWS()
    signed.deserialize(body["payload"], key=merchant_key, alg="RS256")  # verified first
    assert signed.jose_header == {"alg": "RS256", "kid": "JuspaySID"}
    inner = signed.payload.decode()
    assert inner.count(".") == 4  # what was signed is the compact JWE
    opened = jwe.JWE()
    opened.deserialize(inner, key=juspay_key)
    assert "cty" not in opened.jose_header  # nothing nested inside the encryption
    assert json.loads(opened.payload) == {"fulfillmentId": "f1"}
    assert "AttemptEncrypter(kid='JuspayKID'" in repr(encrypter)
    unsigned = AttemptEncrypter(
        juspay_public_key_pem=juspay_key.export_to_pem(), key_id="k", merchant_key_id="s"
    )
    assert unsigned.body({"a": 1})["payload"].count(".") == 4


def test_keys_load_from_files(tmp_path: Path, juspay_key: jwk.JWK, merchant_key: jwk.JWK) -> None:
    public = tmp_path / "juspay.pem"
    public.write_bytes(juspay_key.export_to_pem())
    private = tmp_path / "merchant.pem"
    private.write_bytes(merchant_key.export_to_pem(private_key=True, password=None))
    encrypter = AttemptEncrypter.from_files(
        public_key_file=public, key_id="k", merchant_key_id="s", private_key_file=private
    )
    assert encrypter.signs


def test_a_missing_or_wrong_key_file_is_named_and_its_content_is_not(
    tmp_path: Path, juspay_key: jwk.JWK
) -> None:
    missing = tmp_path / "absent.pem"
    with pytest.raises(KeyLoadError, match=r"absent\.pem: file not found"):
        AttemptEncrypter.from_files(public_key_file=missing, key_id="k", merchant_key_id="s")

    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN PUBLIC KEY-----\nc2VjcmV0LWJ5dGVz\n-----END PUBLIC KEY-----\n")
    with pytest.raises(KeyLoadError, match=r"garbage\.pem") as caught:
        AttemptEncrypter.from_files(public_key_file=garbage, key_id="k", merchant_key_id="s")
    assert "c2VjcmV0" not in str(caught.value)

    public = tmp_path / "public.pem"
    public.write_bytes(juspay_key.export_to_pem())
    with pytest.raises(KeyLoadError, match="expected a private key"):
        AttemptEncrypter.from_files(
            public_key_file=public, key_id="k", merchant_key_id="s", private_key_file=public
        )

    ec_key = tmp_path / "ec.pem"
    ec_key.write_bytes(jwk.JWK.generate(kty="EC", crv="P-256").export_to_pem())
    with pytest.raises(KeyLoadError, match="expected an RSA key"):
        AttemptEncrypter.from_files(public_key_file=ec_key, key_id="k", merchant_key_id="s")

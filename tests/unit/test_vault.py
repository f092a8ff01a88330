"""Card data at rest: sealed under the card data key, opened only with it, for its own row."""

from __future__ import annotations

import base64
import json
import os

import pytest

from billing.store.vault import (
    CardDataUnreadable,
    CardVault,
    VaultError,
    vault_from_setting,
)

PAN = "4000056655665556"
SECRET = {"kind": "NUMBER", "number": PAN, "month": "09", "year": "2031", "name": "A Kumar"}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode()


@pytest.fixture
def vault() -> CardVault:
    return CardVault(os.urandom(32))


def test_a_sealed_card_opens_to_the_same_value(vault: CardVault) -> None:
    sealed = vault.seal(SECRET, context="po1-f1")
    assert vault.open(sealed, context="po1-f1") == SECRET


def test_the_ciphertext_holds_no_plaintext(vault: CardVault) -> None:
    sealed = vault.seal(SECRET, context="po1-f1")
    assert sealed.count(".") == 4  # compact JWE: header..iv.ciphertext.tag (dir: no key part)
    decoded = b"".join(
        base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)) for part in sealed.split(".")
    )
    for text in (PAN, PAN[-8:], "A Kumar", "2031"):
        assert text not in sealed
        assert text.encode() not in decoded
    header = json.loads(base64.urlsafe_b64decode(sealed.split(".")[0] + "=="))
    assert header == {"alg": "dir", "enc": "A256GCM", "kid": vault.key_id, "ctx": "po1-f1"}


def test_two_seals_of_the_same_card_differ(vault: CardVault) -> None:
    assert vault.seal(SECRET, context="f") != vault.seal(SECRET, context="f")


def test_a_wrong_key_is_refused_naming_the_setting_not_the_key(vault: CardVault) -> None:
    sealed = vault.seal(SECRET, context="po1-f1")
    other = CardVault(os.urandom(32))
    with pytest.raises(CardDataUnreadable, match="sealed with another key") as caught:
        other.open(sealed, context="po1-f1")
    assert "BILLING_CARD_DATA_KEY" in str(caught.value)


def test_a_wrong_key_with_the_same_fingerprint_header_still_does_not_decrypt(
    vault: CardVault,
) -> None:
    sealed = vault.seal(SECRET, context="po1-f1")
    other = CardVault(os.urandom(32))
    other.key_id = vault.key_id  # a forged header cannot help: the tag does not verify
    with pytest.raises(CardDataUnreadable, match="does not decrypt"):
        other.open(sealed, context="po1-f1")


def test_a_ciphertext_moved_to_another_row_does_not_open(vault: CardVault) -> None:
    sealed = vault.seal(SECRET, context="po1-f1")
    with pytest.raises(CardDataUnreadable, match="another record"):
        vault.open(sealed, context="po2-f1")


@pytest.mark.parametrize("part", [3, 4])
def test_a_tampered_ciphertext_is_refused(vault: CardVault, part: int) -> None:
    parts = vault.seal(SECRET, context="f").split(".")
    parts[part] = ("A" if parts[part][0] != "A" else "B") + parts[part][1:]
    with pytest.raises(CardDataUnreadable):
        vault.open(".".join(parts), context="f")


def test_garbage_is_refused(vault: CardVault) -> None:
    with pytest.raises(CardDataUnreadable, match="not a sealed value"):
        vault.open("not-a-jwe", context="f")


@pytest.mark.parametrize(
    "secret",
    [
        {"number": PAN, "cvv": "123"},
        {"number": PAN, "cardSecurityCode": "123"},
        {"type": "PAY_CARD", "details": {"pan": PAN, "cardSecurityCode": "123"}},
    ],
)
def test_a_cvv_is_never_sealed(vault: CardVault, secret: dict[str, object]) -> None:
    with pytest.raises(VaultError, match="CVV"):
        vault.seal(secret, context="f")


def test_the_key_comes_from_the_setting_as_url_safe_base64_of_32_bytes() -> None:
    key = os.urandom(32)
    vault = vault_from_setting(b64(key))
    assert vault is not None
    assert vault.open(CardVault(key).seal(SECRET, context="f"), context="f") == SECRET
    assert vault_from_setting(b64(key).rstrip("=")) is not None  # padding optional
    assert vault_from_setting(None) is None
    with pytest.raises(VaultError, match="BILLING_CARD_DATA_KEY: expected 32 bytes"):
        vault_from_setting(b64(os.urandom(16)))
    with pytest.raises(VaultError, match="BILLING_CARD_DATA_KEY"):
        vault_from_setting("!!!")


def test_the_vault_never_shows_its_key() -> None:
    key = os.urandom(32)
    vault = CardVault(key)
    assert b64(key).rstrip("=") not in repr(vault)
    assert repr(vault) == f"CardVault(kid={vault.key_id!r})"

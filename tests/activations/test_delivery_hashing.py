"""R11: identifiers are normalised per Google/Meta/X rules and leave only as SHA-256 hex."""

from __future__ import annotations

import hashlib

import pytest

from activations.hashing import (
    hash_email,
    hash_phone,
    is_sha256_hex,
    normalize_email,
    normalize_phone,
)

# Golden vectors published in vendor docs: the UID2 normalisation guide (trim, lower-case,
# E.164; the same rules as Google's) and X's custom-audience guide.
UID2_EMAIL = (
    "  USER@example.com ",
    "b4c9a289323b21a01c3e940f150eb9b8c542587f1abfd8f0e1cc1ffc5e475514",
)
UID2_PHONE = ("(234) 567-8901", "10e6f0b47054a83359477dcb35231db6de5c69fb1816e1a6b98e192de9e5b9ee")
X_HANDLE_HASH = ("adsapi", "49e0be2aeccfb51a8dee4c945c8a70a9ac500cf6f5cb08112575f74db9b1470d")


def test_hash_email_matches_the_published_vector() -> None:
    raw, expected = UID2_EMAIL
    assert hash_email(raw) == expected


def test_hash_phone_e164_matches_the_published_vector() -> None:
    raw, expected = UID2_PHONE
    assert hash_phone(raw, default_country_code="1") == expected
    assert hash_phone("+1 234 567 8901") == expected


def test_sha256_is_unsalted_lowercase_hex_as_x_documents() -> None:
    value, expected = X_HANDLE_HASH
    assert hashlib.sha256(value.encode()).hexdigest() == expected
    assert hash_email("adsapi@x.com") == hash_email("ADSAPI@X.COM ")


def test_meta_phone_format_is_digits_with_country_code() -> None:
    assert (
        normalize_phone("+44 (0)20-7946 0958".replace("(0)", ""), phone_format="digits")
        == "442079460958"
    )
    assert (
        hash_phone("+12345678901", phone_format="digits")
        == hashlib.sha256(b"12345678901").hexdigest()
    )
    assert normalize_phone("0044 20 7946 0958") == "+442079460958"
    assert normalize_phone("020 7946 0958", default_country_code="44") == "+442079460958"


def test_cm360_gmail_dot_rule_is_opt_in_and_only_for_gmail() -> None:
    assert normalize_email("Jane.Doe@GMail.com") == "jane.doe@gmail.com"
    assert normalize_email("Jane.Doe@GMail.com", gmail_dot_rule=True) == "janedoe@gmail.com"
    assert normalize_email("j.d@googlemail.com", gmail_dot_rule=True) == "jd@googlemail.com"
    assert normalize_email("jane.doe@example.com", gmail_dot_rule=True) == "jane.doe@example.com"


def test_existing_hashes_pass_through_unchanged() -> None:
    digest = "B4C9A289323B21A01C3E940F150EB9B8C542587F1ABFD8F0E1CC1FFC5E475514"
    assert hash_email(digest) == digest.lower()
    assert hash_phone(digest.lower()) == digest.lower()
    assert is_sha256_hex(hash_email("a@b.co"))


@pytest.mark.parametrize(
    ("function", "value"),
    [
        (normalize_email, "canary-not-an-email"),
        (normalize_email, "@example.com"),
        (normalize_phone, "5551234"),
        (normalize_phone, "+12"),
        (normalize_phone, "+1 555 CALL NOW"),
    ],
)
def test_bad_identifiers_raise_without_echoing_the_value(function, value: str) -> None:
    with pytest.raises(ValueError) as error:
        function(value)
    assert value not in str(error.value)

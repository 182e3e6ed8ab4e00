"""Normalise and SHA-256 hash identifiers for ad-platform customer lists (PROVIDERS.md §4, R11).

- Email: trim, lower-case (Google, Meta, X). Optionally Campaign Manager 360's rule: drop every
  `.` before the `@` of gmail.com / googlemail.com addresses.
- Phone: E.164. Google hashes the E.164 string with its `+` ("+12345678901"); Meta wants digits
  only with the country code and no leading zeros ("12345678901"). `phone_format` picks one.
- A value that is already a 64-hex SHA-256 digest passes through (lower-cased), so a list that
  mixes pre-hashed and raw identifiers hashes each value exactly once.

Errors never echo the value: it is PII.
"""

from __future__ import annotations

import hashlib
import re
from typing import Literal

PhoneFormat = Literal["e164", "digits"]

_SHA256_HEX = re.compile(r"^[0-9a-fA-F]{64}$")
_PHONE_PUNCTUATION = re.compile(r"[\s().\-/]")
_GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})


def is_sha256_hex(value: str) -> bool:
    return bool(_SHA256_HEX.match(value))


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def normalize_email(email: str, *, gmail_dot_rule: bool = False) -> str:
    normalized = email.strip().lower()
    local, at, domain = normalized.rpartition("@")
    if not at or not local or not domain or " " in normalized:
        raise ValueError("not an email address (value withheld)")
    if gmail_dot_rule and domain in _GMAIL_DOMAINS:
        normalized = f"{local.replace('.', '')}@{domain}"
    return normalized


def normalize_phone(
    phone: str, *, phone_format: PhoneFormat = "e164", default_country_code: str | None = None
) -> str:
    """E.164 (`+<country><number>`) or its digits. A number without `+`/`00` needs
    `default_country_code` (digits, e.g. "44"); its national trunk `0` is dropped."""
    compact = _PHONE_PUNCTUATION.sub("", phone.strip())
    if compact.startswith("+"):
        digits = compact[1:]
    elif compact.startswith("00"):
        digits = compact[2:]
    elif default_country_code:
        digits = default_country_code.lstrip("+") + compact.lstrip("0")
    else:
        raise ValueError("phone has no country code and no default_country_code was given")
    if not digits.isdigit() or not 8 <= len(digits) <= 15 or digits.startswith("0"):
        raise ValueError("not an E.164 phone number (value withheld)")
    return f"+{digits}" if phone_format == "e164" else digits


def hash_email(email: str, *, gmail_dot_rule: bool = False) -> str:
    if is_sha256_hex(email.strip()):
        return email.strip().lower()
    return sha256_hex(normalize_email(email, gmail_dot_rule=gmail_dot_rule))


def hash_phone(
    phone: str, *, phone_format: PhoneFormat = "e164", default_country_code: str | None = None
) -> str:
    if is_sha256_hex(phone.strip()):
        return phone.strip().lower()
    return sha256_hex(
        normalize_phone(phone, phone_format=phone_format, default_country_code=default_country_code)
    )

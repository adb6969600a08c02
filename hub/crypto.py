"""Encryption at rest of personal data, and blind indexes to find duplicates without reading it.

Why: the hub stores names, email addresses, phone numbers and free-text notes about people
being referred between organizations. A copy of the database (a backup, a dump handed to
support, a stolen disk) must not reveal them, so those columns hold Fernet tokens
(AES-128-CBC + HMAC-SHA256, with a timestamp) instead of plaintext.

Key rotation: `HUB_DATA_KEYS` lists Fernet keys, newest first. The first key encrypts; every key
decrypts. To rotate, put a new key in front, keep the old ones after it, re-encrypt the rows
with `KeyRing.rotate`, then drop the old keys. With no `HUB_DATA_KEYS` (development, embedded
mode) one key is derived from the secret key, so everything works with nothing configured.

Blind indexes: encrypted values cannot be compared (each token has a random IV), so duplicate
detection compares keyed hashes (HMAC-SHA256) of *normalised* values instead. Their key is
derived from the secret key, not from the data keys, so rotating data keys leaves every index
valid. Changing the secret key, on the other hand, invalidates every blind index.

Never filter on an encrypted column (`where(Person.email == ...)` cannot match): filter on its
blind index.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import unicodedata
from collections.abc import Sequence
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import Dialect, Text
from sqlalchemy.types import TypeDecorator

GENERATE_KEY_HINT = (
    "generate one with: python -c 'from cryptography.fernet import Fernet; "
    "print(Fernet.generate_key().decode())'"
)


class UndecryptableData(ValueError):
    """A stored token that none of the configured data keys can read."""


def _hkdf(secret_key: str, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(
        secret_key.encode("utf-8")
    )


class KeyRing:
    """Data keys (the first encrypts, all decrypt) and the blind-index key."""

    def __init__(self, data_keys: Sequence[bytes | str], index_key: bytes) -> None:
        if not data_keys:
            raise ValueError("a key ring needs at least one data key")
        self._primary = Fernet(data_keys[0])
        self._fernet = MultiFernet([self._primary, *(Fernet(key) for key in data_keys[1:])])
        self._key_count = len(data_keys)
        self.index_key = index_key

    @classmethod
    def from_settings(cls, data_keys: str, secret_key: str) -> KeyRing:
        """Build from `HUB_DATA_KEYS` (comma-separated, newest first) and `HUB_SECRET_KEY`."""
        entries = [entry.strip() for entry in data_keys.split(",")]
        entries = [entry for entry in entries if entry]
        for position, entry in enumerate(entries, start=1):
            try:
                Fernet(entry)
            except (ValueError, TypeError):
                raise ValueError(
                    f"HUB_DATA_KEYS: key #{position} of {len(entries)} is not a valid Fernet key "
                    f"(it must be 32 bytes in URL-safe base64, 44 characters); {GENERATE_KEY_HINT}"
                ) from None
        if not entries:
            derived = _hkdf(secret_key, b"maillage data encryption")
            entries = [base64.urlsafe_b64encode(derived).decode("ascii")]
        return cls(entries, _hkdf(secret_key, b"maillage blind index"))

    def __repr__(self) -> str:  # never show key material
        return f"<KeyRing with {self._key_count} data key(s)>"

    def encrypt(self, text: str) -> str:
        return self._fernet.encrypt(text.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token).decode("utf-8")
        except InvalidToken:
            raise UndecryptableData(
                "stored encrypted data cannot be read by any configured key in HUB_DATA_KEYS "
                "(was a key removed, or the secret key changed?)"
            ) from None

    def rotate(self, token: str) -> str:
        """The same plaintext, re-encrypted with the first key."""
        try:
            return self._fernet.rotate(token).decode("ascii")
        except InvalidToken:
            raise UndecryptableData(
                "cannot rotate: no configured key in HUB_DATA_KEYS can read this data"
            ) from None

    def is_current(self, token: str) -> bool:
        """Whether the first (current) key reads this token, i.e. it needs no rotation."""
        try:
            self._primary.decrypt(token)
        except InvalidToken:
            return False
        return True

    def blind_index(self, value: str) -> str:
        return hmac.new(self.index_key, value.encode("utf-8"), hashlib.sha256).hexdigest()


# Process-wide, because SQLAlchemy type decorators convert values without any access to the
# Flask app or its config. The app factory installs its ring at startup; a later install (tests
# create several apps) simply replaces it. One process serves one hub, so one ring suffices.
_current: KeyRing | None = None


def install(keyring: KeyRing) -> None:
    global _current
    _current = keyring


def current() -> KeyRing:
    if _current is None:
        raise RuntimeError(
            "no encryption key ring installed: call hub.crypto.install(KeyRing.from_settings(...)) "
            "before reading or writing encrypted columns (create_app does it)"
        )
    return _current


class EncryptedText(TypeDecorator[str]):
    """A string stored as a Fernet token. Cannot be compared in SQL: use a blind index."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str):
            raise TypeError(f"EncryptedText expects str, got {type(value).__name__}")
        return current().encrypt(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else current().decrypt(value)


class EncryptedJSON(TypeDecorator[Any]):
    """A JSON value stored encrypted. In-place changes are not tracked: assign a new value."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return current().encrypt(json.dumps(value, ensure_ascii=False))

    def process_result_value(self, value: str | None, dialect: Dialect) -> Any:
        return None if value is None else json.loads(current().decrypt(value))


# Hyphens and dashes, apostrophes (straight, typographic, modifier letter), dots, whitespace.
_NAME_SEPARATORS = re.compile(r"[\s\-\u2010\u2011\u2012\u2013\u2014'\u2018\u2019\u02bc.]+")


def normalize_name(s: str) -> str:
    """'Marie-Ève  O’Neil' -> 'marie eve o neil': no accents, no case, one kind of separator."""
    decomposed = unicodedata.normalize("NFKD", s.casefold())
    bare = "".join(char for char in decomposed if not unicodedata.combining(char))
    return _NAME_SEPARATORS.sub(" ", bare).strip()


def normalize_email(s: str) -> str:
    return s.strip().casefold()


def normalize_phone(s: str) -> str:
    """Digits only, without the North American leading 1: '+1 (514) 555-0199' -> '5145550199'."""
    digits = re.sub(r"[^0-9]", "", unicodedata.normalize("NFKC", s))
    if len(digits) == 11 and digits.startswith("1"):
        digits = digits[1:]
    return digits


def identity_index(
    keyring: KeyRing, given_name: str, family_name: str, birth_year: int | None
) -> str:
    """Blind index of a person's normalised name and birth year, for duplicate detection."""
    return keyring.blind_index(
        f"{normalize_name(given_name)}|{normalize_name(family_name)}|{birth_year or ''}"
    )


def contact_indexes(keyring: KeyRing, email: str | None, phone: str | None) -> list[str]:
    """Blind indexes of the normalised email and phone, for those given."""
    values = []
    if email and (normalized := normalize_email(email)):
        values.append(f"email:{normalized}")
    if phone and (normalized := normalize_phone(phone)):
        values.append(f"phone:{normalized}")
    return [keyring.blind_index(value) for value in values]

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

Per-person keys (crypto-shredding, docs/design.md §15): a participant's personal data is sealed
under a data key of their own, which the key ring wraps and a key store apart from the database
keeps (`hub.privacy.keystore`).  Erasing the person destroys that key, and with it every copy of
their data, backups included.  A model says which of its columns belong to whom with
`personal_data()`; before each flush their new values are tagged with their owner (`Owned`),
and the column types seal a tagged value under the owner's key (`p1:<owner>:<token>`).  A value
whose owner's key is gone reads as None.  Untagged values are sealed by the key ring as before.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import unicodedata
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import Dialect, Text, event, inspect
from sqlalchemy.orm import Session
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


# --- per-person keys ----------------------------------------------------------------------

PERSON_SEAL = "p1:"  # a value sealed under its owner's key: "p1:<owner hex>:<Fernet token>"


class PersonKeys(Protocol):
    """Where each person's data key is kept (`hub.privacy.keystore.KeyStore`)."""

    def key_of(self, owner: uuid.UUID, *, create: bool) -> Fernet | None: ...


_person_keys: PersonKeys | None = None


def install_person_keys(keys: PersonKeys | None) -> None:
    """Process-wide, like the key ring; None: every value is sealed by the key ring."""
    global _person_keys
    _person_keys = keys


@contextmanager
def using(keyring: KeyRing, person_keys: PersonKeys | None) -> Iterator[None]:
    """Seal and open with these keys for a while (a migration, a command on another
    database), then with the process's again."""
    global _current, _person_keys
    before = _current, _person_keys
    _current, _person_keys = keyring, person_keys
    try:
        yield
    finally:
        _current, _person_keys = before


class Owned(str):
    """A personal value, tagged with the person whose key seals it."""

    owner: uuid.UUID

    def __new__(cls, value: str, owner: uuid.UUID) -> Owned:
        tagged = super().__new__(cls, value)
        tagged.owner = owner
        return tagged


class OwnedList(list[Any]):
    """A personal list (a leg's needs), tagged with its owner."""

    owner: uuid.UUID

    def __init__(self, values: Any, owner: uuid.UUID) -> None:
        super().__init__(values)
        self.owner = owner


def _seal(plaintext: str, owner: uuid.UUID | None) -> str:
    if owner is None or _person_keys is None:
        return current().encrypt(plaintext)
    key = _person_keys.key_of(owner, create=True)
    assert key is not None
    return f"{PERSON_SEAL}{owner.hex}:{key.encrypt(plaintext.encode('utf-8')).decode('ascii')}"


def owner_of_token(token: str) -> uuid.UUID | None:
    """Whose key seals a stored value; None for a value sealed by the key ring."""
    if not token.startswith(PERSON_SEAL):
        return None
    return uuid.UUID(token[len(PERSON_SEAL):].split(":", 1)[0])


def _unseal(token: str) -> tuple[str | None, uuid.UUID | None]:
    """The plaintext and its owner; (None, owner) when the owner's key was destroyed."""
    owner = owner_of_token(token)
    if owner is None:
        return current().decrypt(token), None
    key = _person_keys.key_of(owner, create=False) if _person_keys is not None else None
    if key is None:
        return None, owner
    try:
        return key.decrypt(token.rsplit(":", 1)[1]).decode("utf-8"), owner
    except InvalidToken:
        raise UndecryptableData(f"a value sealed for {owner} does not open with their key"
                                ) from None


def seal_owned(plaintext: str, owner: uuid.UUID) -> str:
    """`plaintext` sealed under `owner`'s key, as stored (moving ring-sealed values)."""
    return _seal(plaintext, owner)


# Which columns of which model hold whose personal data: {model: (columns, owner of a row)}.
_PERSONAL: dict[type, tuple[tuple[str, ...], Callable[[Session, Any], uuid.UUID | None]]] = {}


def personal_data(model: type, columns: Sequence[str],
                  owner: Callable[[Session, Any], uuid.UUID | None]) -> None:
    """Declare that `columns` of `model` are the personal data of the person `owner` names
    (given the session and the row): their values are sealed under that person's key."""
    _PERSONAL[model] = (tuple(columns), owner)


@event.listens_for(Session, "before_flush")
def _tag_owners(session: Session, _context: Any, _instances: Any) -> None:
    """Tag what is about to be written with its owner, so the column types seal it under the
    owner's key, whichever use case wrote it."""
    if _person_keys is None:
        return
    for row in (*session.new, *session.dirty):
        declared = _PERSONAL.get(type(row))
        if declared is None:
            continue
        columns, owner_of = declared
        state = inspect(row)
        changed = [name for name in columns
                   if row in session.new or state.attrs[name].history.has_changes()]
        values = {name: getattr(row, name) for name in changed}
        values = {name: value for name, value in values.items()
                  if value is not None and not isinstance(value, Owned | OwnedList)}
        if not values:
            continue
        with session.no_autoflush:
            owner = owner_of(session, row)
        if owner is None:
            continue
        for name, value in values.items():
            if isinstance(value, str):
                setattr(row, name, Owned(value, owner))
            elif isinstance(value, list):
                setattr(row, name, OwnedList(value, owner))


class EncryptedText(TypeDecorator[str]):
    """A string stored as a Fernet token. Cannot be compared in SQL: use a blind index.

    An empty stored value is an erased one (see `hub.privacy.erasure`) and reads as ""."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str):
            raise TypeError(f"EncryptedText expects str, got {type(value).__name__}")
        return _seal(value, value.owner if isinstance(value, Owned) else None)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None or value == "":
            return value
        plaintext, owner = _unseal(value)
        if plaintext is None or owner is None:
            return plaintext
        return Owned(plaintext, owner)


class EncryptedJSON(TypeDecorator[Any]):
    """A JSON value stored encrypted. In-place changes are not tracked: assign a new value."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        owner = value.owner if isinstance(value, OwnedList) else None
        return _seal(json.dumps(value, ensure_ascii=False), owner)

    def process_result_value(self, value: str | None, dialect: Dialect) -> Any:
        if value is None or value == "":
            return None
        plaintext, owner = _unseal(value)
        if plaintext is None:
            return None
        loaded = json.loads(plaintext)
        return OwnedList(loaded, owner) if owner is not None and isinstance(loaded, list) \
            else loaded


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

"""Encryption at rest (Fernet, key rotation), SQLAlchemy column types and blind indexes."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import Column, Integer, MetaData, Table, create_engine, insert, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import StatementError

from hub import crypto
from hub.crypto import (
    EncryptedJSON,
    EncryptedText,
    KeyRing,
    UndecryptableData,
    contact_indexes,
    identity_index,
    normalize_email,
    normalize_name,
    normalize_phone,
)

SECRET = "a-test-secret-key-of-at-least-thirty-two-characters"
KEY_A = Fernet.generate_key().decode()
KEY_B = Fernet.generate_key().decode()


def ring(data_keys: str = "", secret_key: str = SECRET) -> KeyRing:
    return KeyRing.from_settings(data_keys, secret_key)


@pytest.fixture
def installed(monkeypatch: pytest.MonkeyPatch) -> KeyRing:
    """Install a ring for this test only; monkeypatch puts back whatever was there."""
    keyring = ring(KEY_A)
    monkeypatch.setattr(crypto, "_current", None)
    crypto.install(keyring)
    return keyring


metadata = MetaData()
people = Table(
    "people",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", EncryptedText),
    Column("aliases", EncryptedJSON),
)


@pytest.fixture
def engine(installed: KeyRing) -> Iterator[Engine]:
    engine = create_engine("sqlite://")
    metadata.create_all(engine)
    yield engine
    engine.dispose()


# --- KeyRing ---------------------------------------------------------------------------------


def test_round_trip_of_accented_text() -> None:
    keyring = ring(KEY_A)
    token = keyring.encrypt("Hélène Tremblay-Côté")
    assert "Hélène" not in token and "Tremblay" not in token
    assert keyring.decrypt(token) == "Hélène Tremblay-Côté"


def test_each_encryption_gives_a_different_token() -> None:
    keyring = ring(KEY_A)
    assert keyring.encrypt("same") != keyring.encrypt("same")


def test_rotation_new_key_first_old_key_still_reads() -> None:
    old, rotating, new_only = ring(KEY_A), ring(f"{KEY_B}, {KEY_A}"), ring(KEY_B)
    token_a = old.encrypt("note about Marie")

    assert rotating.decrypt(token_a) == "note about Marie"
    assert not rotating.is_current(token_a)
    with pytest.raises(UndecryptableData):
        new_only.decrypt(token_a)

    token_b = rotating.encrypt("written after rotation")
    assert new_only.decrypt(token_b) == "written after rotation"
    with pytest.raises(UndecryptableData):
        old.decrypt(token_b)

    rotated = rotating.rotate(token_a)
    assert rotating.is_current(rotated)
    assert new_only.decrypt(rotated) == "note about Marie"
    with pytest.raises(UndecryptableData):
        old.decrypt(rotated)


def test_undecryptable_message_is_clear_and_does_not_leak_the_token() -> None:
    token = ring(KEY_A).encrypt("secret")
    with pytest.raises(UndecryptableData, match="no configured key|any configured key") as info:
        ring(KEY_B).decrypt(token)
    assert token not in str(info.value)
    assert isinstance(info.value, ValueError)
    with pytest.raises(UndecryptableData):
        ring(KEY_B).decrypt("not a token at all")
    with pytest.raises(UndecryptableData):
        ring(KEY_B).rotate(token)


def test_whitespace_and_empty_entries_in_the_key_list_are_tolerated() -> None:
    token = ring(KEY_A).encrypt("x")
    assert ring(f"  {KEY_B} ,\n {KEY_A} ,").decrypt(token) == "x"


def test_malformed_key_names_its_position_and_how_to_generate_one() -> None:
    with pytest.raises(ValueError) as info:
        ring(f"{KEY_A},not-a-fernet-key")
    message = str(info.value)
    assert "HUB_DATA_KEYS" in message
    assert "#2 of 2" in message
    assert "Fernet.generate_key().decode()" in message
    assert "not-a-fernet-key" not in message


def test_key_of_wrong_length_is_rejected() -> None:
    with pytest.raises(ValueError, match="#1 of 1"):
        ring("c2hvcnQ=")  # valid base64, 5 bytes


def test_dev_default_is_derived_from_the_secret_stably() -> None:
    token = ring("", SECRET).encrypt("embedded mode")
    assert ring("", SECRET).decrypt(token) == "embedded mode"
    assert ring("  ", SECRET).decrypt(token) == "embedded mode"
    with pytest.raises(UndecryptableData):
        ring("", SECRET + "-other").decrypt(token)
    with pytest.raises(UndecryptableData):
        ring(KEY_A, SECRET).decrypt(token)


def test_index_key_survives_data_key_rotation_but_not_a_new_secret() -> None:
    before, after = ring(KEY_A), ring(f"{KEY_B},{KEY_A}")
    assert before.index_key == after.index_key == ring("").index_key
    assert before.blind_index("x") == after.blind_index("x")
    assert ring(KEY_A, SECRET + "-other").index_key != before.index_key
    assert len(before.index_key) == 32


def test_index_key_is_not_the_data_encryption_key() -> None:
    keyring = ring("")
    made_with_index_key = Fernet(base64.urlsafe_b64encode(keyring.index_key)).encrypt(b"x")
    with pytest.raises(UndecryptableData):
        keyring.decrypt(made_with_index_key.decode())


def test_blind_index_is_keyed_hex_sha256() -> None:
    digest = ring(KEY_A).blind_index("hello")
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert digest != ring(KEY_A, SECRET + "-other").blind_index("hello")
    assert digest != ring(KEY_A).blind_index("hello ")


def test_repr_does_not_show_keys() -> None:
    shown = repr(ring(f"{KEY_B},{KEY_A}"))
    assert KEY_A not in shown and KEY_B not in shown
    assert "2" in shown


# --- process-wide ring -----------------------------------------------------------------------


def test_current_without_install_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(crypto, "_current", None)
    with pytest.raises(RuntimeError, match="install"):
        crypto.current()


def test_installing_again_replaces_the_ring(installed: KeyRing) -> None:
    assert crypto.current() is installed
    other = ring(KEY_B)
    crypto.install(other)
    assert crypto.current() is other


# --- column types ----------------------------------------------------------------------------


def test_encrypted_text_round_trip_and_raw_value_is_ciphertext(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(insert(people).values(id=1, name="Hélène Tremblay-Côté"))
        assert connection.scalar(select(people.c.name)) == "Hélène Tremblay-Côté"
        raw = connection.scalar(text("select name from people where id = 1"))
    assert isinstance(raw, str)
    assert "Hélène" not in raw and "Tremblay" not in raw
    assert crypto.current().decrypt(raw) == "Hélène Tremblay-Côté"


def test_encrypted_json_round_trip_with_accents(engine: Engine) -> None:
    aliases = ["Marie-Ève", "Zoé O’Neil", "François"]
    with engine.begin() as connection:
        connection.execute(insert(people).values(id=1, aliases=aliases))
        assert connection.scalar(select(people.c.aliases)) == aliases
        raw = connection.scalar(text("select aliases from people where id = 1"))
    # Four letters or more: a random token holds any two letters by chance (1 in 30 runs).
    assert "Marie" not in raw and "Neil" not in raw and "Fran" not in raw
    assert crypto.current().decrypt(raw) == '["Marie-Ève", "Zoé O’Neil", "François"]'


def test_none_passes_through_both_types(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(insert(people).values(id=1, name=None, aliases=None))
        assert connection.execute(select(people.c.name, people.c.aliases)).one() == (None, None)
        raw = connection.execute(text("select name, aliases from people")).one()
    assert tuple(raw) == (None, None)


def test_rows_written_before_rotation_read_after_it(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(insert(people).values(id=1, name="Avant"))
    crypto.install(ring(f"{KEY_B},{KEY_A}"))
    with engine.begin() as connection:
        assert connection.scalar(select(people.c.name)) == "Avant"
    crypto.install(ring(KEY_B))
    with engine.begin() as connection, pytest.raises(UndecryptableData):
        connection.scalar(select(people.c.name))


def test_encrypted_text_refuses_non_strings(engine: Engine) -> None:
    with engine.begin() as connection, pytest.raises(StatementError, match="expects str"):
        connection.execute(insert(people).values(id=1, name=42))


# --- normalisation and blind indexes ---------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Hélène", "helene"),
        ("Marie-Ève  O’Neil", "marie eve o neil"),
        ("  JEAN-FRANÇOIS  ", "jean francois"),
        ("D'Amours", "d amours"),
        ("St.-Onge", "st onge"),
        ("Gaëtan\tLévesque", "gaetan levesque"),
        ("Côté", "cote"),
        ("Noël Bélanger–Gagné", "noel belanger gagne"),
    ],
)
def test_normalize_name(raw: str, expected: str) -> None:
    assert normalize_name(raw) == expected


def test_normalize_name_composed_and_decomposed_accents_agree() -> None:
    assert normalize_name("Ho\u0302te\u0301") == normalize_name("Hôté") == "hote"


def test_normalize_email() -> None:
    assert normalize_email("  Helene.Cote@Example.QC.ca \n") == "helene.cote@example.qc.ca"


@pytest.mark.parametrize(
    "raw", ["+1 (514) 555-0199", "514.555.0199", "1-514-555-0199", "514 555 0199"]
)
def test_normalize_phone_north_american_forms_agree(raw: str) -> None:
    assert normalize_phone(raw) == "5145550199"


def test_normalize_phone_keeps_other_numbers() -> None:
    assert normalize_phone("+33 1 23 45 67 89") == "33123456789"
    assert normalize_phone("poste 1234") == "1234"
    assert normalize_phone("n/a") == ""


def test_identity_index_ignores_accents_case_and_separators() -> None:
    keyring = ring(KEY_A)
    assert identity_index(keyring, "Hélène", "Tremblay-Côté", 1984) == identity_index(
        keyring, "helene", "tremblay cote", 1984
    )
    assert identity_index(keyring, "Hélène", "Tremblay-Côté", 1984) != identity_index(
        keyring, "Hélène", "Tremblay-Côté", 1985
    )
    assert identity_index(keyring, "Hélène", "Tremblay-Côté", None) != identity_index(
        keyring, "Hélène", "Tremblay-Côté", 1984
    )


def test_identity_index_does_not_merge_given_and_family_names() -> None:
    keyring = ring(KEY_A)
    assert identity_index(keyring, "Marie Ève", "Roy", None) != identity_index(
        keyring, "Marie", "Ève Roy", None
    )


def test_identity_index_survives_data_key_rotation() -> None:
    assert identity_index(ring(KEY_A), "Zoé", "O’Neil", 2001) == identity_index(
        ring(f"{KEY_B},{KEY_A}"), "zoe", "o'neil", 2001
    )


def test_contact_indexes() -> None:
    keyring = ring(KEY_A)
    both = contact_indexes(keyring, " Zoe@Example.com ", "+1 (514) 555-0199")
    assert both == [
        keyring.blind_index("email:zoe@example.com"),
        keyring.blind_index("phone:5145550199"),
    ]
    assert contact_indexes(keyring, "zoe@example.com", "514.555.0199") == both
    assert contact_indexes(keyring, None, "1-514-555-0199") == both[1:]
    assert contact_indexes(keyring, "ZOE@example.com", None) == both[:1]
    assert contact_indexes(keyring, "   ", "n/a") == []
    assert contact_indexes(keyring, None, None) == []

"""Upgrading a database written before encryption at rest: its personal data is encrypted by
the migration, and reads back the same through the hub."""

from __future__ import annotations

import uuid
from pathlib import Path

from alembic import command
from sqlalchemy import create_engine, text

from hub import crypto, models
from hub.config import Settings
from hub.consent import key_rotation
from hub.ops import migrations_config
from hub.privacy import keystore

FOUNDATION = "b8d7a50a3e4b"


def test_the_privacy_migration_encrypts_rows_written_in_clear(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    command.upgrade(migrations_config(url), FOUNDATION)
    engine = create_engine(url)
    org, person, leg = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO organizations (id, name, kind, region, capacity, created_at, "
            "last_validated_at) "
            "VALUES (:id, 'Carrefour', 'community', '06', 'open', '2026-11-01 10:00:00', "
            "'2026-11-01 10:00:00')"),
            {"id": org.hex})
        connection.execute(text(
            "INSERT INTO participants (id, organization_id, given_name, family_name, "
            "preferred_language, email, phone, birth_year, created_at) VALUES (:id, :org, "
            "'Amina', 'Benali', 'fr', 'amina@example.org', '514-555-0101', 1990, "
            "'2026-11-01 10:00:00')"), {"id": person.hex, "org": org.hex})
        connection.execute(text(
            "INSERT INTO referrals (id, chain_id, participant_id, from_organization_id, "
            "to_organization_id, pathway, priority, reason_for_referral, needs, status, "
            "version, created_at, updated_at) VALUES (:id, :id, :p, :org, :org, 'employment', "
            "'routine', 'Soudure à Rimouski', '[\"logement\"]', 'sent', 1, "
            "'2026-11-01 10:00:00', '2026-11-01 10:00:00')"),
            {"id": leg.hex, "p": person.hex, "org": org.hex})

    command.upgrade(migrations_config(url), "head")
    # As `hub db upgrade` does once the migrations have run: each person's data under their key.
    settings = Settings(database_url=url)
    moved = key_rotation.move_database_to_person_keys(url, models.Base.metadata, "",
                                                      settings.secret_key, settings.keystore)
    assert moved == 6  # names, contacts, reason, needs

    with engine.connect() as connection:
        stored = connection.execute(text(
            "SELECT given_name, email, identity_index FROM participants")).one()
        reason, needs = connection.execute(text(
            "SELECT reason_for_referral, needs FROM referrals")).one()
    assert "Amina" not in repr(stored) and "amina" not in repr(stored)
    assert "Soudure" not in reason and "logement" not in needs
    keyring = crypto.KeyRing.from_settings("", Settings.from_env().secret_key)
    assert stored[2] == crypto.identity_index(keyring, "Amina", "Benali", 1990)
    # Then moved under the person's own key, in the key store beside the database: the key
    # ring alone no longer reads them.
    assert all(crypto.owner_of_token(value) == person
               for value in (stored[0], stored[1], reason, needs))
    store = keystore.KeyStore(Settings(database_url=url).keystore)
    with crypto.using(keyring, store):
        key = store.key_of(person, create=False)
        assert key is not None
        assert key.decrypt(stored[0].rsplit(":", 1)[1]).decode() == "Amina"
        assert key.decrypt(reason.rsplit(":", 1)[1]).decode() == "Soudure à Rimouski"
        assert key.decrypt(needs.rsplit(":", 1)[1]).decode() == '["logement"]'
    store.dispose()

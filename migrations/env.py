"""Alembic environment: migrations are the only way the hub's tables are made."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from hub.models import Base
from webhooks.models import metadata as webhooks_metadata

config = context.config
# The hub's tables and the webhook delivery engine's (a package of its own, with its metadata).
target_metadata = [Base.metadata, webhooks_metadata]


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = create_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters by copying
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

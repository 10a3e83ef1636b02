"""Alembic environment: runs on the connection `Database.migrate` hands over (inside its
lock), or, from the alembic command line, on `WINDMAKER_DATABASE_URL`."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from adapters.config import load_config
from adapters.store.database import Database
from adapters.store.tables import metadata

config = context.config


def run_migrations_offline() -> None:
    context.configure(
        url=load_config()["DATABASE_URL"],
        target_metadata=metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        database = Database(load_config()["DATABASE_URL"], migrate=False)
        with database.write() as conn:
            _run(conn)
        database.dispose()
    else:
        _run(connection)


def _run(connection: Connection) -> None:
    # Batch mode lets later revisions ALTER tables on SQLite too.
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

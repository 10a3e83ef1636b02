"""The engine of one database: connections, transactions, and migrating it on start.

SQLite and PostgreSQL both work. On SQLite every write transaction takes the write lock
up front (BEGIN IMMEDIATE), WAL lets readers carry on meanwhile, and foreign keys are on.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# Any constant shared by every Windmaker process: serialises concurrent migrations.
_PG_MIGRATION_LOCK = 0x57494E44


class Database:
    """A database engine with read and write transactions and its migrations."""

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        if migrate:
            self.migrate()

    # -- plumbing ---------------------------------------------------------------------

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction; on SQLite it takes the write lock up front, so a
        read-then-write transaction can never deadlock against another writer."""
        with self.engine.connect() as conn:
            if self.is_sqlite:
                conn.info["sqlite_begin"] = "BEGIN IMMEDIATE"
            with conn.begin():
                yield conn

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision; safe when several processes
        start together (they queue on a lock, the later ones find nothing to do)."""
        # Imported here: solver processes and the CLI open stores without migrating.
        from alembic import command
        from alembic.config import Config as AlembicConfig

        config = AlembicConfig()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        with self.write() as conn:
            if self.engine.dialect.name == "postgresql":
                conn.execute(
                    sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK}
                )
            config.attributes["connection"] = conn
            command.upgrade(config, "head")

    def ping(self) -> None:
        with self.read() as conn:
            conn.execute(sa.select(1))

    def dispose(self) -> None:
        self.engine.dispose()


# Request threads, runner threads and their heartbeats all hold connections at once.
_POOL = {"pool_size": 10, "max_overflow": 20}


def make_engine(url: str) -> Engine:
    if not url.startswith("sqlite"):
        return sa.create_engine(url, pool_pre_ping=True, **_POOL)
    engine = sa.create_engine(
        url, connect_args={"check_same_thread": False, "timeout": 30}, **_POOL
    )

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide where transactions begin (see `write`).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        if ":memory:" not in url and "mode=memory" not in url:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql(conn.info.pop("sqlite_begin", "BEGIN"))

    return engine

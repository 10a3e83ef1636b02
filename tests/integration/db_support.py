"""Throwaway databases for tests: a SQLite file, or a fresh PostgreSQL schema that is
dropped afterwards (so reruns start clean and parallel runs never meet)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

POSTGRES_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
REDIS_SERVER = "redis://127.0.0.1:6379"


def sqlite_url(directory: Path) -> str:
    return f"sqlite:///{directory / 'windmaker.db'}"


def postgres_available() -> bool:
    try:
        engine = sa.create_engine(POSTGRES_SERVER, connect_args={"connect_timeout": 2})
        with engine.connect():
            pass
        engine.dispose()
        return True
    except Exception:
        return False


def redis_available() -> bool:
    try:
        import redis

        redis.Redis.from_url(REDIS_SERVER, socket_connect_timeout=2).ping()
        return True
    except Exception:
        return False


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A database URL whose tables live in a new schema, dropped on exit."""
    if not postgres_available():
        pytest.skip(f"PostgreSQL is not reachable at {POSTGRES_SERVER}")
    schema = f"wm_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(POSTGRES_SERVER)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{POSTGRES_SERVER}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@contextmanager
def database(kind: str, directory: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield sqlite_url(directory)
    else:
        with postgres_schema() as url:
            yield url

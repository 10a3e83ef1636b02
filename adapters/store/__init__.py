"""The SQLAlchemy store: jobs, plans, comparisons, API keys, adoptions and the audit log
in SQLite or PostgreSQL, migrated by Alembic (`adapters/store/migrations`) when a process
opens it."""

from __future__ import annotations

import threading

from adapters.config import load_config
from adapters.store.jobs import JobTables
from adapters.store.keys import KeyTables
from adapters.store.provenance import ProvenanceTables


class Store(JobTables, KeyTables, ProvenanceTables):
    """The database behind one Windmaker deployment: `service.ports.JobStore`,
    `service.ports.KeyStore` and `service.ports.ProvenanceStore` over one engine."""


_stores: dict[str, Store] = {}
_stores_lock = threading.Lock()


def store_for(url: str) -> Store:
    """One migrated Store (engine and pool) per database URL per process."""
    with _stores_lock:
        if url not in _stores:
            _stores[url] = Store(url)
        return _stores[url]


def default_store() -> Store:
    """The store of the configured database (WINDMAKER_DATABASE_URL / DATABASE_URL)."""
    return store_for(load_config()["DATABASE_URL"])


def forget_connections() -> None:
    """Drop every shared store's pooled connections without closing them: a forked
    process must not use its parent's database sockets."""
    with _stores_lock:
        for store in _stores.values():
            store.engine.dispose(close=False)

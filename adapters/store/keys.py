"""API keys in the database. Only a token's SHA-256 is stored, so a leaked database does
not leak working keys; a token is looked up by its hash."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import sqlalchemy as sa

from adapters.store.database import Database
from adapters.store.provenance import record_audit
from adapters.store.tables import api_keys_table
from service.records import ANONYMOUS, KEY_CREATE, KEY_REVOKE, ApiKey, utcnow

_KEY_COLUMNS = [
    api_keys_table.c[name]
    for name in ("id", "name", "role", "created_at", "revoked_at", "last_used_at")
]


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class KeyTables(Database):
    """The API-key half of the store (`service.ports.KeyStore`)."""

    def add_key(
        self, *, key_id: str, name: str, role: str, token: str, by: str = ANONYMOUS
    ) -> ApiKey:
        now = utcnow()
        with self.write() as conn:
            conn.execute(
                api_keys_table.insert().values(
                    id=key_id,
                    name=name,
                    role=role,
                    token_hash=hash_token(token),
                    created_at=now,
                )
            )
            record_audit(conn, by, KEY_CREATE, key_id, {"name": name, "role": role})
        return ApiKey(key_id, name, role, now, None, None)

    def find_key(self, token: str) -> ApiKey | None:
        with self.read() as conn:
            row = conn.execute(
                sa.select(*_KEY_COLUMNS).where(api_keys_table.c.token_hash == hash_token(token))
            ).one_or_none()
        return ApiKey(*row) if row is not None else None

    def touch_key(self, key_id: str, older_than: timedelta) -> None:
        """Note a key's use, at most once per `older_than` so reads stay read-only."""
        now = utcnow()
        with self.write() as conn:
            conn.execute(
                api_keys_table.update()
                .where(
                    api_keys_table.c.id == key_id,
                    sa.or_(
                        api_keys_table.c.last_used_at.is_(None),
                        api_keys_table.c.last_used_at < now - older_than,
                    ),
                )
                .values(last_used_at=now)
            )

    def list_keys(self) -> list[ApiKey]:
        with self.read() as conn:
            rows = conn.execute(
                sa.select(*_KEY_COLUMNS).order_by(api_keys_table.c.created_at)
            ).all()
        return [ApiKey(*row) for row in rows]

    def revoke_key(self, key_id: str, *, by: str = ANONYMOUS) -> bool:
        with self.write() as conn:
            result = conn.execute(
                api_keys_table.update()
                .where(api_keys_table.c.id == key_id, api_keys_table.c.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
            if result.rowcount == 1:
                name = conn.execute(
                    sa.select(api_keys_table.c.name).where(api_keys_table.c.id == key_id)
                ).scalar_one()
                record_audit(conn, by, KEY_REVOKE, key_id, {"name": name})
        return result.rowcount == 1

    def any_active_key(self) -> bool:
        with self.read() as conn:
            return (
                conn.execute(
                    sa.select(api_keys_table.c.id)
                    .where(api_keys_table.c.revoked_at.is_(None))
                    .limit(1)
                ).first()
                is not None
            )

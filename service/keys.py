"""API keys and roles.

A key is a random token shown once at creation; the store keeps only its hash, so a
leaked database does not leak working keys. Planners read and write; viewers only read.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import timedelta

from service.errors import Forbidden, Unauthorized
from service.ports import KeyStore
from service.records import ANONYMOUS, ApiKey, utcnow

PLANNER = "planner"
VIEWER = "viewer"
ROLES = (PLANNER, VIEWER)
TOKEN_PREFIX = "wm_"
_TOUCH_EVERY = timedelta(minutes=1)


def create_key(
    store: KeyStore, role: str, name: str | None = None, *, by: str = ANONYMOUS
) -> tuple[str, str]:
    """Create a key with `role` (audited under `by`); returns (key id, token). The token
    is not stored."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    key_id = uuid.uuid4().hex[:12]
    store.add_key(key_id=key_id, name=name or "", role=role, token=token, by=by)
    return key_id, token


def list_keys(store: KeyStore) -> list[ApiKey]:
    return store.list_keys()


def revoke_key(store: KeyStore, key_id: str, *, by: str = ANONYMOUS) -> bool:
    """Revoke a key (audited under `by`); False when no active key has that id."""
    return store.revoke_key(key_id, by=by)


def actor_of(key: ApiKey | None) -> str:
    """How the audit log and `submitted_by` name whoever holds `key`: its name (its id
    when unnamed), or "anonymous" while authentication is off."""
    if key is None:
        return ANONYMOUS
    return key.name or f"key {key.id}"


def auth_required(store: KeyStore, *, require_auth: bool) -> bool:
    """Authentication is on when configured, or as soon as any active key exists."""
    return require_auth or store.any_active_key()


def authenticate(store: KeyStore, authorization: str | None) -> ApiKey:
    """The active key named by an `Authorization: Bearer <token>` header."""
    if not authorization:
        raise Unauthorized("missing API key: send 'Authorization: Bearer <key>'")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("malformed Authorization header: expected 'Bearer <key>'")
    key = store.find_key(token)
    if key is None:
        raise Unauthorized("unknown API key")
    if not key.active:
        raise Unauthorized("revoked API key")
    # Reads must not write: note the use only when the stored note is stale, so at most
    # one write per key per minute instead of a write transaction per request.
    if key.last_used_at is None or key.last_used_at < utcnow() - _TOUCH_EVERY:
        store.touch_key(key.id, _TOUCH_EVERY)
    return key


def require_planner(key: ApiKey | None, what: str) -> None:
    """Only planner keys may `what` (anyone may while authentication is off)."""
    if key is not None and key.role != PLANNER:
        raise Forbidden(f"a {key.role} key may not {what}; it takes a planner key")


def authorize(key: ApiKey, *, write: bool) -> None:
    if write and key.role != PLANNER:
        raise Forbidden(f"a {key.role} key may read but not submit or cancel")

"""API keys and roles.

A key is a random token shown once at creation; only its SHA-256 is stored, so a leaked
database does not leak working keys. Planners read and write; viewers only read.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import timedelta

from api.errors import Forbidden, Unauthorized
from api.store import ApiKey, Store, default_store

PLANNER = "planner"
VIEWER = "viewer"
ROLES = (PLANNER, VIEWER)
TOKEN_PREFIX = "wm_"
_TOUCH_EVERY = timedelta(minutes=1)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_key(
    role: str, name: str | None = None, *, store: Store | None = None
) -> tuple[str, str]:
    """Create a key with `role`; returns (key id, token). The token is not stored."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    key_id = uuid.uuid4().hex[:12]
    (store or default_store()).add_key(
        key_id=key_id, name=name or "", role=role, token_hash=hash_token(token)
    )
    return key_id, token


def list_keys(*, store: Store | None = None) -> list[ApiKey]:
    return (store or default_store()).list_keys()


def revoke_key(key_id: str, *, store: Store | None = None) -> bool:
    """Revoke a key; False when no active key has that id."""
    return (store or default_store()).revoke_key(key_id)


def auth_required(store: Store, *, require_auth: bool) -> bool:
    """Authentication is on when configured, or as soon as any active key exists."""
    return require_auth or store.any_active_key()


def authenticate(store: Store, authorization: str | None) -> ApiKey:
    """The active key named by an `Authorization: Bearer <token>` header."""
    if not authorization:
        raise Unauthorized("missing API key: send 'Authorization: Bearer <key>'")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("malformed Authorization header: expected 'Bearer <key>'")
    key = store.find_key(hash_token(token))
    if key is None:
        raise Unauthorized("unknown API key")
    if not key.active:
        raise Unauthorized("revoked API key")
    store.touch_key(key.id, _TOUCH_EVERY)
    return key


def authorize(key: ApiKey, *, write: bool) -> None:
    if write and key.role != PLANNER:
        raise Forbidden(f"a {key.role} key may read but not submit or cancel")

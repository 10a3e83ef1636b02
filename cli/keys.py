"""`windmaker keys`: create, list and revoke API keys in the configured database."""

from __future__ import annotations

from typing import Any

import click

from adapters.store import default_store
from cli.provenance import cli_actor
from cli.report import table
from service import keys as api_keys


@click.group()
def keys() -> None:
    """Manage API keys."""


@keys.command("create")
@click.option("--role", required=True, type=click.Choice(["planner", "viewer"]))
@click.option("--name", default=None, help="A note on who or what uses the key.")
def keys_create(role: str, name: str | None) -> None:
    """Create a key; its token is printed once."""
    key_id, token = api_keys.create_key(default_store(), role, name=name, by=cli_actor())
    click.echo(f"key id: {key_id}")
    click.echo(f"token:  {token}")
    click.echo("Store the token now: it is not shown again.", err=True)


@keys.command("list")
def keys_list() -> None:
    """List API keys (never their tokens)."""

    def when(moment: Any) -> str:
        return moment.isoformat(timespec="seconds") if moment is not None else "-"

    click.echo(
        table(
            [
                {
                    "id": key.id,
                    "name": key.name or "-",
                    "role": key.role,
                    "status": "active" if key.revoked_at is None else "revoked",
                    "created": when(key.created_at),
                    "last used": when(key.last_used_at),
                }
                for key in api_keys.list_keys(default_store())
            ],
            indent="",
        )
    )


@keys.command("revoke")
@click.argument("key_id")
def keys_revoke(key_id: str) -> None:
    """Revoke a key: its token stops working at once."""
    if not api_keys.revoke_key(default_store(), key_id, by=cli_actor()):
        raise click.ClickException(f"no active key with id {key_id!r}")
    click.echo(f"revoked {key_id}")

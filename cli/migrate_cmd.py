"""`recsys migrate`: rename the stream's state from the layout before hash tags (single Redis) to today's."""

from __future__ import annotations

import redis
import typer

from common.key_migration import migrate
from common.settings import get_settings


def migrate_command() -> None:
    """Move RECSYS_KEY_PREFIX's keys in RECSYS_REDIS_URL to the layout with hash tags (every customer's keys tagged
    with their id, the shared state with one tag). Stop the stream worker, the archiver and the API first; run it
    again after an interruption: keys already moved are left alone."""
    settings = get_settings()
    client = redis.Redis.from_url(settings.redis_url)
    result = migrate(client, settings.key_prefix,
                     on_progress=lambda renamed, scanned: typer.echo(f"  {scanned:,} keys read, {renamed:,} renamed"))
    typer.echo(f"migrated: {result.renamed:,} of {result.scanned:,} keys renamed")
    if result.conflicts:
        typer.secho(f"error: {result.conflicts:,} old keys kept: their new names hold keys already (a worker of this "
                    f"version ran before the migration); compare and delete by hand", err=True, fg=typer.colors.RED)
        raise typer.Exit(code=1)

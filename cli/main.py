"""The `recsys` command: one subcommand group per job."""

from __future__ import annotations

import sys

import typer

from cli import (
    ab_cmd,
    archive_cmd,
    batch_cmd,
    data_cmd,
    health_cmd,
    migrate_cmd,
    serve_cmd,
    stack_cmd,
    stream_cmd,
    system_cmd,
    ui_cmd,
)
from common.settings import get_settings

app = typer.Typer(
    help="Event-driven product recommender: local stack, data, stream, batch, API and UI.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# What only a single Redis can do: `migrate` renames keys across slots, which a cluster refuses (and a cluster
# starts in the tagged layout anyway).
SINGLE_REDIS_ONLY = frozenset({"migrate"})


@app.callback()
def _refuse_what_a_cluster_cannot_run(ctx: typer.Context) -> None:
    asks_help = "--help" in sys.argv[1:]
    if ctx.invoked_subcommand in SINGLE_REDIS_ONLY and not asks_help and get_settings().redis_cluster:
        typer.secho(f"error: `recsys {ctx.invoked_subcommand}` moves a single Redis's keys to the layout a Redis "
                    "Cluster starts in; unset RECSYS_REDIS_CLUSTER", err=True, fg=typer.colors.RED)
        raise typer.Exit(code=2)


app.add_typer(stack_cmd.app, name="stack")
app.add_typer(data_cmd.app, name="data")
app.add_typer(batch_cmd.app, name="batch")
app.add_typer(ab_cmd.app, name="ab")
app.command("replay")(stream_cmd.replay_command)
app.command("stream")(stream_cmd.stream_command)
app.command("archive")(archive_cmd.archive_command)
app.command("serve")(serve_cmd.serve_command)
app.command("ui")(ui_cmd.ui_command)
app.command("up")(system_cmd.up_command)
app.command("down")(system_cmd.down_command)
app.command("health")(health_cmd.health_command)
app.command("migrate")(migrate_cmd.migrate_command)

if __name__ == "__main__":
    app()

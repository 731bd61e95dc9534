"""The `recsys` command: one subcommand group per job."""

from __future__ import annotations

import typer

from cli import (
    ab_cmd,
    archive_cmd,
    batch_cmd,
    data_cmd,
    health_cmd,
    serve_cmd,
    stack_cmd,
    stream_cmd,
    system_cmd,
    ui_cmd,
)

app = typer.Typer(
    help="Event-driven product recommender: local stack, data, stream, batch, API and UI.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
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

if __name__ == "__main__":
    app()

from __future__ import annotations

import time

import typer

from cli.errors import friendly_errors
from common.settings import get_settings
from stack import LocalStack, ServiceStatus

app = typer.Typer(help="Start, stop and check the local broker (Tansu) and redis-server.", no_args_is_help=True)


def _print(statuses: list[ServiceStatus]) -> None:
    for s in statuses:
        state = "healthy" if s.healthy else ("running, not healthy" if s.running else "stopped")
        pid = f"pid {s.pid}" if s.pid else ""
        note = f"  ({s.note})" if s.note else ""
        typer.echo(f"{s.name:<7} {s.host}:{s.port:<6} {state:<21} {pid}{note}")


@app.command()
def up() -> None:
    """Start the broker and Redis (idempotent) and wait until both answer."""
    started = time.perf_counter()
    with friendly_errors():
        statuses = LocalStack(get_settings()).up()
    _print(statuses)
    typer.echo(f"stack up in {time.perf_counter() - started:.2f}s")


@app.command()
def down() -> None:
    """Stop the processes `stack up` started (only those)."""
    with friendly_errors():
        stopped = LocalStack(get_settings()).down()
    typer.echo(f"stopped: {', '.join(stopped)}" if stopped else "nothing of ours was running")


@app.command()
def status() -> None:
    """Show each service's pid, port and health; exit 1 if any is not healthy."""
    with friendly_errors():
        statuses = LocalStack(get_settings()).status()
    _print(statuses)
    if not all(s.healthy for s in statuses):
        raise typer.Exit(code=1)

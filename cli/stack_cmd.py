from __future__ import annotations

import time

import typer

from cli.errors import friendly_errors
from common.settings import Settings, get_settings
from stack import LocalStack, ServiceStatus, StackError
from stack.system import Processes

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
def down(
    wipe: bool = typer.Option(False, "--wipe", help="Also delete the saved state (as `stack reset --yes`)."),
) -> None:
    """Stop the processes `stack up` started (only those). Redis's data stays on disk for the next `up`."""
    settings = get_settings()
    with friendly_errors():
        stopped = LocalStack(settings).down()
        typer.echo(f"stopped: {', '.join(stopped)}" if stopped else "nothing of ours was running")
        if wipe:
            _wipe(settings)


@app.command()
def reset(yes: bool = typer.Option(False, "--yes", help="Confirm: the state is deleted for good.")) -> None:
    """Stop the broker and Redis and delete what they keep: Redis's data and the default archive folder."""
    settings = get_settings()
    if not yes:
        paths = ", ".join(str(p) for p in LocalStack(settings).state_paths())
        raise typer.BadParameter(f"this deletes {paths} for good; run again with --yes")
    with friendly_errors():
        stopped = LocalStack(settings).down()
        typer.echo(f"stopped: {', '.join(stopped)}" if stopped else "nothing of ours was running")
        _wipe(settings)


def _wipe(settings: Settings) -> None:
    running = [p.name for p in Processes(settings).status()]
    if running:
        raise StackError(f"{', '.join(running)} still running: run `recsys down` first")
    deleted = LocalStack(settings).wipe()
    typer.echo(f"deleted: {', '.join(str(p) for p in deleted)}" if deleted else "no saved state to delete")


@app.command()
def status() -> None:
    """Show each service's pid, port and health; exit 1 if any is not healthy."""
    with friendly_errors():
        statuses = LocalStack(get_settings()).status()
    _print(statuses)
    if not all(s.healthy for s in statuses):
        raise typer.Exit(code=1)

"""`recsys health COMPONENT`: whether a worker, archiver or batch scheduler on this machine (or in this container)
is alive, from the heartbeat it writes (common/health.py). Exit 0 when healthy, 1 when not: a container's
healthcheck."""

from __future__ import annotations

from enum import StrEnum

import typer

from common.health import check
from common.settings import get_settings


class Component(StrEnum):
    stream = "stream"
    archive = "archive"
    batch = "batch"


# How old a heartbeat may be: the worker and the archiver beat every 10 s and 5 s, the scheduler every 15 s.
DEFAULT_MAX_AGE_S = {Component.stream: 60.0, Component.archive: 60.0, Component.batch: 120.0}


def health_command(
    component: Component = typer.Argument(..., help="stream (the worker), archive or batch (the scheduler)."),
    max_age: float | None = typer.Option(None, "--max-age", help="Seconds a heartbeat may be old (default: 60, "
                                                                  "120 for batch)."),
    max_running: float = typer.Option(4 * 3600, "--max-running", help="batch: longest a run may take, seconds."),
) -> None:
    """Is the COMPONENT process on this machine alive? One line, exit 0 (healthy) or 1."""
    verdict = check(get_settings().run_dir, component.value, max_age or DEFAULT_MAX_AGE_S[component],
                    max_running_s=max_running if component is Component.batch else None)
    typer.echo(verdict.message)
    raise typer.Exit(code=0 if verdict.healthy else 1)

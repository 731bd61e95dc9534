"""Known failures end as one line on stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer

from batch.pipeline import EngineUnavailable
from common.data import DataError
from producers.visits import VisitError
from stack import StackError


@contextmanager
def friendly_errors() -> Iterator[None]:
    try:
        yield
    except (DataError, EngineUnavailable, StackError, VisitError) as exc:
        typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
        raise typer.Exit(code=2) from None

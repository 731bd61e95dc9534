"""Known failures end as one line on stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import typer

from api.visits import VisitError
from batch.engine import EngineUnavailable
from batch.memory import BUDGET_SETTING, EASE_SETTING, MemoryBudgetError
from common.data import DataError
from stack import StackError


@contextmanager
def friendly_errors() -> Iterator[None]:
    try:
        yield
    except (DataError, EngineUnavailable, StackError, VisitError, MemoryBudgetError) as exc:
        _fail(str(exc))
    except MemoryError:
        # The plan should have stopped this first; if an allocation still fails, say what to change, not where.
        _fail(f"out of memory: set {BUDGET_SETTING} to the memory this machine can give the job (the batch plans "
              f"within it) or lower {EASE_SETTING}")


def _fail(message: str) -> NoReturn:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code=2) from None

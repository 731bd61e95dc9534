"""A batch job runs in a child process, so a crash inside native code (BLAS, LAPACK, a model library) ends as one
clear line and a non-zero exit, never as the user's shell reporting a signal. The child writes the Python stack
at the crash (faulthandler) to a file the line names."""

from __future__ import annotations

import faulthandler
import multiprocessing
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import typer

# typer ships its own copy of click: its errors' base class is found through the one typer exports.
CLICK_ERROR: type[Exception] = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")
CRASH_EXIT = 3  # 1: an uncaught bug; 2: a known failure (cli/errors.py); 3: the job's process died


def run_in_child(job: Callable[[], None], crash_log: Path, what: str = "the batch job") -> None:
    """`job()` in a forked child; its exit code becomes ours. A child killed by a signal is reported in one line."""
    crash_log.parent.mkdir(parents=True, exist_ok=True)
    child = multiprocessing.get_context("fork").Process(target=_child, args=(job, crash_log), name=what)
    child.start()
    try:
        child.join()
    except KeyboardInterrupt:
        child.terminate()
        child.join()
        raise
    code = child.exitcode
    if code is None or code == 0:
        crash_log.unlink(missing_ok=True)
        return
    if code < 0:
        name = signal.Signals(-code).name
        typer.secho(f"error: {what} crashed inside native code ({name}), not in a step that reports its own "
                    f"error; the Python stack at the crash is in {crash_log}. Lower RECSYS_BATCH_MEMORY_GB or "
                    "RECSYS_BATCH_EASE_MAX_ITEMS to take a smaller path, and report it with that file.",
                    err=True, fg=typer.colors.RED)
        raise typer.Exit(code=CRASH_EXIT)
    raise typer.Exit(code=code)


def _child(job: Callable[[], None], crash_log: Path) -> None:
    with crash_log.open("w") as log:
        faulthandler.enable(log)
        try:
            job()
        except typer.Exit as exc:
            sys.exit(exc.exit_code)
        except CLICK_ERROR as exc:  # a bad option found while running: shown as click shows it
            exc.show()  # type: ignore[attr-defined]
            sys.exit(exc.exit_code)  # type: ignore[attr-defined]

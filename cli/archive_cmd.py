"""`recsys archive`: the purchase archiver (its own consumer group), until SIGTERM / Ctrl-C."""

from __future__ import annotations

import asyncio
import logging
import signal

import typer

from common.settings import Settings, get_settings
from stack.supervise import exit_status, supervise
from stack.system import RECSYS


def archive_command(
    loglevel: str = typer.Option("info", "--loglevel"),
    restart_on_failure: bool = typer.Option(
        False, "--restart-on-failure", help="Start the archiver again (with back-off) whenever it stops on an error."
    ),
) -> None:
    """Write every valid purchase once to the Parquet archive (RECSYS_ARCHIVE_URL, default <run_dir>/archive),
    partitioned by event date, at least every RECSYS_ARCHIVE_FLUSH_S seconds."""
    if restart_on_failure:
        raise typer.Exit(exit_status(supervise([RECSYS, "archive", "--loglevel", loglevel])))
    logging.basicConfig(level=loglevel.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    counts = asyncio.run(_until_signal(get_settings()))
    typer.echo(f"archiver stopped: {counts}")


async def _until_signal(settings: Settings) -> object:
    from stream_app.archiver import run_archiver

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return await run_archiver(settings, stop)

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path

import typer
from tqdm import tqdm

from cli.errors import friendly_errors
from common.data import load_history, load_mapping
from common.settings import get_settings
from producers.replay import Pace, replay_until_signal, select, to_events


def replay_command(
    data: Path = typer.Option(None, "--data", help="History file or folder (default: <data_dir>/synthetic)."),
    preset: str = typer.Option("case_study", "--preset", help="Column mapping preset: case_study or uci."),
    mapping: Path | None = typer.Option(None, "--mapping", help="A TOML column-mapping file."),
    customers: Path | None = typer.Option(None, "--customers", help="Customers table."),
    speed: float | None = typer.Option(
        None, "--speed", min=0.001, help="Seconds of history per second of wall time (86400 = a day per second)."
    ),
    max_rate: float | None = typer.Option(None, "--max-rate", min=0.1, help="At most this many events per second."),
    as_fast_as_possible: bool = typer.Option(False, "--as-fast-as-possible", help="No pacing (the default)."),
    start: datetime | None = typer.Option(None, "--from", help="Only events at or after this date."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Only the first N events."),
) -> None:
    """Replay a purchase history into Kafka, one event per order line, in event-time order."""
    if as_fast_as_possible and (speed or max_rate):
        raise typer.BadParameter("--as-fast-as-possible excludes --speed and --max-rate")
    settings = get_settings()
    with friendly_errors():
        loaded = load_history(data or settings.data_dir / "synthetic", load_mapping(preset, mapping), customers)
    lines = select(loaded.lines, start, limit)
    typer.echo(f"replaying {len(lines):,} events to {settings.topic_purchases} at {settings.bootstrap_servers}")
    bar = tqdm(total=len(lines), unit="ev", mininterval=0.5, dynamic_ncols=True)

    def progress(sent: int, clock: datetime) -> None:
        if sent % 500 == 0 or sent == len(lines):
            bar.update(sent - bar.n)
            bar.set_postfix_str(f"history at {clock:%Y-%m-%d %H:%M}", refresh=False)

    summary = asyncio.run(replay_until_signal(settings, to_events(lines), Pace(speed, max_rate), progress))
    bar.update(summary.sent - bar.n)
    bar.close()
    state = "stopped early (flushed)" if summary.interrupted else "done"
    typer.echo(
        f"{state}: {summary.sent:,} events in {summary.seconds:.1f}s ({summary.rate:,.0f} ev/s), "
        f"history {summary.first_event or '-'} .. {summary.last_event or '-'}"
    )


def stream_command(loglevel: str = typer.Option("info", "--loglevel")) -> None:
    """Run the Faust stream worker: purchases -> Redis state; bad events -> dead-letter topic."""
    from stream_app.app import run_worker

    run_worker(get_settings(), loglevel)

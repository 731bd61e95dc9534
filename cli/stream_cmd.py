from __future__ import annotations

import asyncio
import re
from datetime import datetime
from pathlib import Path

import pandas as pd
import typer
from tqdm import tqdm

from api.schemas import AbSummary
from api.visits import Visits
from cli.errors import friendly_errors
from common.data import load_history, load_mapping
from common.events import EXPERIMENT_PATTERN, PurchaseEvent, experiment_name
from common.settings import Settings, get_settings
from producers.master_data import send_master_data
from producers.replay import (
    Pace,
    ProgressFn,
    ReplaySummary,
    archived_events,
    replay_until_signal,
    select,
    to_events,
)
from stack.supervise import exit_status, supervise
from stack.system import RECSYS
from ui.experiment import render_summary


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
    until: datetime | None = typer.Option(None, "--until", help="Only events before this date."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Only the first N events."),
    simulate_visits: bool = typer.Option(
        False, "--simulate-visits", help="Before each order, its customer is served recommendations (A/B exposures)."
    ),
    visit_k: int = typer.Option(10, "--visit-k", min=1, max=100, help="Products shown per simulated visit."),
    experiment: str | None = typer.Option(
        None, "--experiment", help="With visits: the experiment they belong to (default: replay-<first day>).",
        callback=lambda name: _experiment_name(name)),
    wait_s: float = typer.Option(120.0, "--wait", help="With visits: how long to wait for the stream to catch up."),
    master_data: bool = typer.Option(
        True, "--master-data/--no-master-data",
        help="First send the customer profiles, the product catalogue and the file's cleaning report to their "
             "compacted topics.",
    ),
    master_data_only: bool = typer.Option(
        False, "--master-data-only", help="Send only the master data (e.g. after the customers table changed)."),
    from_archive: bool = typer.Option(
        False, "--from-archive", help="Send the purchase archive (RECSYS_ARCHIVE_URL) again, ids as archived: "
                                      "rebuilds Redis state the stream lost; what it has is dropped by event id."),
) -> None:
    """Replay a purchase history into Kafka, one event per order line, in event-time order."""
    if as_fast_as_possible and (speed or max_rate):
        raise typer.BadParameter("--as-fast-as-possible excludes --speed and --max-rate")
    settings = get_settings()
    if from_archive:
        if data is not None or simulate_visits:
            raise typer.BadParameter("--from-archive excludes --data and --simulate-visits")
        _replay_archive(settings, archived_events(settings.archive_location, start, until, limit),
                        Pace(speed, max_rate))
        return
    with friendly_errors():
        loaded = load_history(data or settings.data_dir / "synthetic", load_mapping(preset, mapping), customers,
                              settings.event_bounds)
    lines = select(loaded.lines, start, limit, until)
    if master_data or master_data_only:
        window = {"from": str(start) if start else None, "until": str(until) if until else None, "limit": limit,
                  "lines": len(lines)}
        sent = asyncio.run(send_master_data(settings, loaded, window))
        typer.echo(f"master data: {sent.profiles:,} profiles to {settings.topic_customers}, {sent.products:,} "
                   f"products to {settings.topic_products}, the cleaning report to {settings.topic_data_reports}"
                   + (f"; not sent: {sent.invalid}" if sent.invalid else ""))
        if master_data_only:
            return
    typer.echo(f"replaying {len(lines):,} events to {settings.topic_purchases} at {settings.bootstrap_servers}")
    bar = tqdm(total=len(lines), unit="ev", mininterval=0.5, dynamic_ncols=True)

    def progress(sent: int, clock: datetime) -> None:
        if sent % 500 == 0 or sent == len(lines):
            bar.update(sent - bar.n)
            bar.set_postfix_str(f"history at {clock:%Y-%m-%d %H:%M}", refresh=False)

    result: AbSummary | None = None
    if simulate_visits:
        with friendly_errors():
            summary, result = asyncio.run(
                _replay_with_visits(settings, lines, Pace(speed, max_rate), progress, visit_k, wait_s, experiment))
    else:
        summary = asyncio.run(replay_until_signal(settings, to_events(lines), Pace(speed, max_rate), progress))
    bar.update(summary.sent - bar.n)
    bar.close()
    state = "stopped early (flushed)" if summary.interrupted else "done"
    typer.echo(
        f"{state}: {summary.sent:,} events in {summary.seconds:.1f}s ({summary.rate:,.0f} ev/s), "
        f"history {summary.first_event or '-'} .. {summary.last_event or '-'}"
    )
    if result is not None:
        typer.echo(render_summary(result.model_dump(mode="json")))


def _replay_archive(settings: Settings, events: list[PurchaseEvent], pace: Pace) -> None:
    typer.echo(f"replaying {len(events):,} archived purchases to {settings.topic_purchases}")
    bar = tqdm(total=len(events), unit="ev", mininterval=0.5, dynamic_ncols=True)
    summary = asyncio.run(replay_until_signal(settings, iter(events), pace,
                                              lambda sent, _clock: bar.update(sent - bar.n)))
    bar.close()
    typer.echo(f"{'stopped early (flushed)' if summary.interrupted else 'done'}: {summary.sent:,} events in "
               f"{summary.seconds:.1f}s, history {summary.first_event or '-'} .. {summary.last_event or '-'}")


def _experiment_name(name: str | None) -> str | None:
    if name is not None:
        try:
            experiment_name(name)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
        if not re.fullmatch(EXPERIMENT_PATTERN, name):
            raise typer.BadParameter("letters, digits, '_', '.', '-'; 1..64 characters")
    return name


async def _replay_with_visits(
    settings: Settings, lines: pd.DataFrame, pace: Pace, progress: ProgressFn, k: int, wait_s: float,
    experiment: str | None,
) -> tuple[ReplaySummary, AbSummary]:
    async with Visits(settings, k, experiment=experiment) as visits:
        summary = await replay_until_signal(settings, to_events(lines), pace, progress, visits.before_order)
        typer.echo(f"\nvisits served: {dict(visits.served)}; exposures lost: {visits.lost}; waiting for the stream")
        return summary, await visits.results(summary.sent, wait_s)


def stream_command(
    loglevel: str = typer.Option("info", "--loglevel"),
    restart_on_failure: bool = typer.Option(
        False, "--restart-on-failure", help="Start the worker again (with back-off) whenever it stops on an error."
    ),
) -> None:
    """Run the Faust stream worker: purchases -> Redis state; bad events -> dead-letter topic."""
    if restart_on_failure:
        raise typer.Exit(exit_status(supervise([RECSYS, "stream", "--loglevel", loglevel])))
    from stream_app.app import run_worker

    run_worker(get_settings(), loglevel)

"""`recsys up` / `recsys down`: the whole system on the embedded default, in one command."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pandas as pd
import typer

from cli.errors import friendly_errors
from common.data import load_history, load_mapping
from common.data.synthetic import SyntheticSpec, write
from common.keys import KeyLayout
from common.redis_clients import sync_client
from common.settings import Settings, get_settings
from stack import LocalStack
from stack.system import RECSYS, Processes, wait_http

READY_TIMEOUT_S = 120.0


def up_command(
    data: Path | None = typer.Option(None, "--data", envvar="DATA", help="History file/folder (default: synthetic)."),
    preset: str = typer.Option("case_study", "--preset", envvar="PRESET", help="Column mapping preset for --data."),
    speed: float = typer.Option(43_200.0, "--speed", min=1.0, help="Replay of the last period: history s per s."),
    customers: int = typer.Option(5000, "--customers", min=10, help="Synthetic shop size (without --data)."),
    lines: int = typer.Option(100_000, "--lines", min=100, help="Synthetic history length (without --data)."),
) -> None:
    """Start everything: broker + Redis, the stream worker and the archiver, the customer profiles, product
    catalogue and cleaning report sent to their topics and the history replayed, a first model fitted from the
    topics and published, the API, the UI, and the last period replayed live with simulated visits."""
    settings = get_settings()
    processes = Processes(settings)
    env = os.environ | {"RECSYS_RUN_DIR": str(settings.run_dir.resolve())}
    with friendly_errors():
        say("local stack", lambda: LocalStack(settings).up())
        folder = data or _synthetic(settings, customers, lines)
        history = load_history(folder, load_mapping(preset)).lines
        split = history["event_time"].max().normalize() - pd.Timedelta(days=settings.batch_test_days)
        processes.start("worker", ["stream", "--loglevel", "warning", "--restart-on-failure"], env)
        processes.start("archiver", ["archive", "--loglevel", "warning", "--restart-on-failure"], env)
        typer.echo(f"replaying the history before {split.date()} into {settings.topic_purchases} ...")
        _recsys(["replay", "--data", str(folder), "--preset", preset, "--until", str(split.date())], env)
        before = int((history["event_time"] < split).sum())
        say("stream caught up", lambda: _wait_processed(settings, before))
        typer.echo("fitting and publishing the first model from the purchases topic ...")
        _recsys(["batch", "run"], env)
        processes.start("api", ["serve"], env)
        say("API ready", lambda: _wait_http(f"{settings.api_base_url}/ready"))
        processes.start("ui", ["ui"], env)
        ui_url = f"http://127.0.0.1:{settings.ui_port}"
        say("UI ready", lambda: _wait_http(f"{ui_url}/_stcore/health"))
        processes.start("replay", ["replay", "--data", str(folder), "--preset", preset, "--from",
                                   str(split.date()), "--speed", str(speed), "--simulate-visits",
                                   "--no-master-data"], env)  # the first replay sent it
    typer.echo(f"""
everything is running (logs in {processes.logs}):
  UI   {ui_url}
  API  {settings.api_base_url}/docs
  the last {settings.batch_test_days} days are being replayed with simulated visits at {speed:g}x
    (their own A/B experiment, replay-<first replayed day>; requests you make go to {settings.ab_experiment})
stop everything with: recsys down   (or: make stop)""")


def down_command(
    wipe: bool = typer.Option(False, "--wipe", help="Also delete the saved state: Redis's data, default archive."),
) -> None:
    """Stop what `recsys up` started: replay, UI, API, archiver, stream worker, then the broker and Redis. Their
    state stays on disk for the next `up` unless --wipe."""
    settings = get_settings()
    stopped = Processes(settings).stop()
    stopped += LocalStack(settings).down()
    typer.echo(f"stopped: {', '.join(stopped) or 'nothing was running'}")
    if wipe:
        with friendly_errors():
            deleted = LocalStack(settings).wipe()
        typer.echo(f"deleted: {', '.join(str(p) for p in deleted) or 'no saved state'}")


def say(what: str, step: object) -> None:
    started = time.perf_counter()
    assert callable(step)
    step()
    typer.echo(f"{what}: {time.perf_counter() - started:.1f} s")


def _synthetic(settings: Settings, customers: int, lines: int) -> Path:
    folder = settings.data_dir / "synthetic"
    write(SyntheticSpec(customers=customers, lines=lines), folder)
    return folder


def _recsys(args: list[str], env: dict[str, str]) -> None:
    if subprocess.run([RECSYS, *args], env=env).returncode != 0:
        raise typer.Exit(2)


def _wait_processed(settings: Settings, events: int) -> None:
    client = sync_client(settings, decode_responses=True)
    stats_key = KeyLayout(settings.key_prefix).stream_stats()
    deadline = time.monotonic() + READY_TIMEOUT_S * 5
    while time.monotonic() < deadline:
        stats = client.hmget(stats_key, "processed", "duplicates", "late")
        if sum(int(v or 0) for v in stats) >= events:
            return
        time.sleep(0.5)
    raise typer.BadParameter(f"the stream worker did not process {events:,} events; see .run/logs/worker.log")


def _wait_http(url: str) -> None:
    if not wait_http(url, READY_TIMEOUT_S):
        raise typer.BadParameter(f"{url} did not answer within {READY_TIMEOUT_S:.0f} s; see the logs in .run/logs")

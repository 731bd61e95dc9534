"""`recsys ui`: the Streamlit app, a client of the API."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from common.settings import get_settings

APP = Path(__file__).resolve().parents[1] / "ui" / "app.py"


def ui_command(
    host: str = typer.Option("127.0.0.1", help="Bind address (0.0.0.0 in a container)."),
    port: int | None = typer.Option(None, help="Port (default: settings ui_port)."),
    api_url: str | None = typer.Option(None, "--api-url", help="The API (default: settings api_base_url)."),
) -> None:
    """Serve the live view: stream, customers, segments, rules, model, A/B test, data."""
    settings = get_settings()
    env = os.environ | {"RECSYS_UI_API_URL": api_url or settings.api_base_url}
    # "viewer": no developer toolbar (Deploy button, rerun and settings menu) for the shop's team.
    command = [sys.executable, "-m", "streamlit", "run", str(APP), "--server.port", str(port or settings.ui_port),
               "--server.address", host, "--server.headless", "true", "--browser.gatherUsageStats", "false",
               "--client.toolbarMode", "viewer"]
    # Streamlit takes this process's place: whoever stops `recsys ui` (a signal, a test's fixture) stops the
    # server itself, and no orphan is left listening.
    os.execve(sys.executable, command, env)

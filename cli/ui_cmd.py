"""`recsys ui`: the Streamlit app, a client of the API."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from pathlib import Path

import typer

from common.settings import get_settings

APP = Path(__file__).resolve().parents[1] / "ui" / "app.py"
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


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
    # Whoever stops `recsys ui` stops Streamlit: a SIGTERM or SIGINT is passed on, and on Linux the kernel sends
    # it SIGTERM if this process dies any other way (SIGKILL), so no orphan is left listening.
    server = subprocess.Popen(command, env=env, preexec_fn=_terminated_with_parent)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, _frame: server.send_signal(signum))
    raise typer.Exit(server.wait())


def _terminated_with_parent() -> None:
    """In the child, before Streamlit starts: SIGTERM when the parent dies (Linux's PR_SET_PDEATHSIG)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)

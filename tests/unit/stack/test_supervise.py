"""stack.supervise: a failed command is started again with back-off; success or a stop signal ends it."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from stack.supervise import exit_status, supervise


def succeeds_on_run(n: int, counter: Path) -> list[str]:
    """A command that exits 70 on its first n-1 runs and 0 on run n (runs counted in a file)."""
    script = (
        "import pathlib, sys\n"
        f"p = pathlib.Path({str(counter)!r})\n"
        "runs = int(p.read_text()) + 1 if p.exists() else 1\n"
        "p.write_text(str(runs))\n"
        f"sys.exit(0 if runs >= {n} else 70)\n"
    )
    return [sys.executable, "-c", script]


def waits(said: list[str]) -> list[str]:
    return [line.rsplit(" in ", 1)[1] for line in said]


def test_a_failing_command_is_started_again_until_it_succeeds(tmp_path: Path) -> None:
    said: list[str] = []
    code = supervise(succeeds_on_run(3, tmp_path / "runs"), first_backoff_s=0.01, say=said.append)
    assert code == 0 and (tmp_path / "runs").read_text() == "3"
    assert len(said) == 2 and all("exited with code 70" in line for line in said)


def test_the_wait_doubles_up_to_the_cap(tmp_path: Path) -> None:
    said: list[str] = []
    supervise(succeeds_on_run(5, tmp_path / "runs"), first_backoff_s=0.01, max_backoff_s=0.04, say=said.append)
    assert waits(said) == ["0.01 s", "0.02 s", "0.04 s", "0.04 s"]


def test_the_wait_starts_over_after_a_healthy_run(tmp_path: Path) -> None:
    said: list[str] = []
    supervise(succeeds_on_run(4, tmp_path / "runs"), first_backoff_s=0.01, healthy_run_s=0.0, say=said.append)
    assert waits(said) == ["0.01 s", "0.01 s", "0.01 s"]


def test_a_command_that_succeeds_runs_once() -> None:
    said: list[str] = []
    assert supervise([sys.executable, "-c", "pass"], say=said.append) == 0
    assert said == []


def signal_self_after(seconds: float) -> None:
    threading.Timer(seconds, os.kill, (os.getpid(), signal.SIGTERM)).start()


def test_a_stop_signal_is_passed_on_and_ends_supervision() -> None:
    before = signal.getsignal(signal.SIGTERM)
    signal_self_after(0.5)
    started = time.monotonic()
    code = supervise([sys.executable, "-c", "import time; time.sleep(30)"], first_backoff_s=0.01, say=print)
    assert code == -signal.SIGTERM and exit_status(code) == 143  # the child got it and was not started again
    assert time.monotonic() - started < 10
    assert signal.getsignal(signal.SIGTERM) == before  # our handler is gone again


def test_a_stop_signal_during_the_wait_ends_supervision(tmp_path: Path) -> None:
    signal_self_after(0.5)
    started = time.monotonic()
    code = supervise(succeeds_on_run(99, tmp_path / "runs"), first_backoff_s=20.0, say=print)
    assert code == 70 and (tmp_path / "runs").read_text() == "1"
    assert time.monotonic() - started < 10


def test_a_stop_signal_while_the_command_starts_reaches_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """The signal lands after the handler last looked at the (previous) child and before the new one is known."""
    import subprocess

    real_popen = subprocess.Popen

    def popen_then_signal(argv: list[str]) -> subprocess.Popen[bytes]:
        child = real_popen(argv)
        os.kill(os.getpid(), signal.SIGTERM)  # handled at once, in this (main) thread
        return child

    monkeypatch.setattr(subprocess, "Popen", popen_then_signal)
    started = time.monotonic()
    code = supervise([sys.executable, "-c", "import time; time.sleep(30)"], say=print)
    assert code == -signal.SIGTERM
    assert time.monotonic() - started < 10

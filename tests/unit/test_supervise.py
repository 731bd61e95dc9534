"""stack.supervise: a failed command is started again with back-off; success or a stop signal ends it."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

from stack.supervise import supervise


def _fails_until_third_run(counter: Path) -> list[str]:
    script = (
        "import pathlib, sys\n"
        f"p = pathlib.Path({str(counter)!r})\n"
        "runs = int(p.read_text() or 0) + 1 if p.exists() else 1\n"
        "p.write_text(str(runs))\n"
        "sys.exit(0 if runs >= 3 else 70)\n"
    )
    return [sys.executable, "-c", script]


def test_a_failing_command_is_started_again_until_it_succeeds(tmp_path: Path) -> None:
    counter = tmp_path / "runs"
    said: list[str] = []
    code = supervise(_fails_until_third_run(counter), first_backoff_s=0.01, say=said.append)
    assert code == 0
    assert counter.read_text() == "3"
    assert len(said) == 2 and "exited with code 70" in said[0]
    assert said[0].endswith("in 0.01 s") and said[1].endswith("in 0.02 s")  # the back-off doubles


def test_a_command_that_succeeds_runs_once(tmp_path: Path) -> None:
    said: list[str] = []
    assert supervise([sys.executable, "-c", "pass"], say=said.append) == 0
    assert said == []


def test_a_stop_signal_is_passed_on_and_ends_supervision() -> None:
    threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGTERM)).start()
    started = time.monotonic()
    code = supervise([sys.executable, "-c", "import time; time.sleep(30)"], first_backoff_s=0.01, say=print)
    assert code == -signal.SIGTERM  # the child got the signal; it was not started again
    assert time.monotonic() - started < 10

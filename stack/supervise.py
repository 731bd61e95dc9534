"""Keep a command running: start it again after it fails, until it succeeds or we are told to stop.

The stream worker fail-stops on an unexpected error (its batch stays uncommitted, so a new worker re-reads it);
something has to start that new worker. Docker Compose does it with a restart policy; `recsys up` runs the worker
under this.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from types import FrameType

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def say_now(line: str) -> None:
    print(line, file=sys.stderr, flush=True)  # a log file must show a restart when it happens


def supervise(
    argv: list[str], *, first_backoff_s: float = 1.0, max_backoff_s: float = 30.0, healthy_run_s: float = 60.0,
    say: Callable[[str], None] = say_now,
) -> int:
    """Run ``argv`` until it exits 0 or SIGTERM/SIGINT arrives (passed on to it). After a non-zero exit, wait and
    start it again: the wait doubles from ``first_backoff_s`` up to ``max_backoff_s``, and starts over after a run
    that lasted ``healthy_run_s``. Returns the last exit code (negative: killed by that signal)."""
    received: list[int] = []
    child: subprocess.Popen[bytes] | None = None

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)
        if child is not None and child.poll() is None:
            child.send_signal(signum)  # a second copy, when the whole process group was signalled, is harmless

    previous = {sig: signal.signal(sig, on_signal) for sig in STOP_SIGNALS}
    backoff, code = first_backoff_s, 0
    try:
        while not received:
            started = time.monotonic()
            child = subprocess.Popen(argv)
            if received and child.poll() is None:
                child.send_signal(received[-1])  # arrived while it was being started, before the handler knew it
            code = child.wait()
            if code == 0 or received:
                break
            if time.monotonic() - started >= healthy_run_s:
                backoff = first_backoff_s
            say(f"{' '.join(argv)} exited with code {code}; starting it again in {backoff:g} s")
            resume_at = time.monotonic() + backoff
            while not received and time.monotonic() < resume_at:
                time.sleep(min(0.1, backoff))
            backoff = min(max_backoff_s, backoff * 2)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return code


def exit_status(code: int) -> int:
    """A child's return code as a shell reports it: killed by signal N -> 128 + N."""
    return 128 - code if code < 0 else code

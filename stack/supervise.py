"""Keep a command running: start it again after it fails, until it succeeds or we are told to stop.

The stream worker fail-stops on an unexpected error (its batch stays uncommitted, so a new worker re-reads it);
something has to start that new worker. Docker Compose does it with a restart policy; `recsys up` runs the worker
under this.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from types import FrameType

HEALTHY_RUN_S = 60.0  # a run this long was healthy: its failure starts the back-off again from the first step


def supervise(
    argv: list[str], *, first_backoff_s: float = 1.0, max_backoff_s: float = 30.0,
    say: Callable[[str], None] = print,
) -> int:
    """Run ``argv`` until it exits 0, or SIGTERM/SIGINT arrives (passed on to it); after a non-zero exit, wait
    (doubling from ``first_backoff_s`` up to ``max_backoff_s``) and start it again. Returns its last exit code."""
    stopping = False
    child: subprocess.Popen[bytes] | None = None

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        if child is not None and child.poll() is None:
            child.send_signal(signum)  # a second copy, when the whole process group was signalled, is harmless

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    backoff = first_backoff_s
    try:
        while True:
            started = time.monotonic()
            child = subprocess.Popen(argv)
            code = child.wait()
            if code == 0 or stopping:
                return code
            if time.monotonic() - started > HEALTHY_RUN_S:
                backoff = first_backoff_s
            say(f"{' '.join(argv)} exited with code {code}; starting it again in {backoff:g} s")
            resume_at = time.monotonic() + backoff
            while not stopping and time.monotonic() < resume_at:
                time.sleep(min(0.1, backoff))
            if stopping:
                return code
            backoff = min(max_backoff_s, backoff * 2)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

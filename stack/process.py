"""Background processes the stack starts and stops: the servers (`stack.local`) and the project's own processes
(`stack.system`) are spawned, stopped and reported the same way."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Mapping
from pathlib import Path

POLL_S = 0.05


class StackError(Exception):
    """A stack operation failed; the message says what to do."""


def spawn(argv: list[str], log: Path, env: Mapping[str, str]) -> int:
    """Start ``argv`` (``argv[0]`` is the executable's path) in its own session, stdin from /dev/null, stdout and
    stderr appended to ``log``; returns its pid, which is also its process group."""
    # posix_spawn rather than Popen: the process outlives this one, in its own session, and nothing here holds a
    # Popen object that would warn about a child it never waited for.
    return os.posix_spawn(
        argv[0], argv, env,
        file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, str(log), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644),
            (os.POSIX_SPAWN_DUP2, 1, 2),
        ],
        setsid=True,
    )


def terminate(pid: int, timeout_s: float, *, group: bool) -> None:
    """SIGTERM, wait up to ``timeout_s`` for it to exit, then SIGKILL. ``group`` signals the process group ``pid``
    leads (a spawned process and its children, e.g. uvicorn workers) rather than the one process."""
    send = os.killpg if group else os.kill
    try:
        send(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        _reap(pid)
        if not is_running(pid):
            return
        time.sleep(POLL_S)
    with contextlib.suppress(ProcessLookupError):
        send(pid, signal.SIGKILL)
    _reap(pid)


def is_running(pid: int) -> bool:
    """Alive: it exists and is not a zombie waiting for its parent to collect it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][:1] != "Z"
    except OSError:
        return False


def _reap(pid: int) -> None:
    """Collect the exit status when the process is our own child (tests start and stop it in-process)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)

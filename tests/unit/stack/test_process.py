"""stack.process: a spawned process has its own session and log; terminate stops a pid or its whole group, and
kills what ignores SIGTERM."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from common.settings import Settings
from stack.process import StackError, is_running, spawn, terminate
from stack.system import RECSYS, Processes


def wait_until(condition_met: Callable[[], object], timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition_met():
            return True
        time.sleep(0.02)
    return False


def test_spawn_runs_in_its_own_session_with_no_input_and_appends_both_outputs_to_the_log(tmp_path: Path) -> None:
    log = tmp_path / "child.log"
    log.write_text("earlier run\n")
    script = (
        "import os, sys\n"
        "print('own session', os.getsid(0) == os.getpid(), flush=True)\n"
        "print('to stderr', file=sys.stderr, flush=True)\n"
        "print('stdin', repr(sys.stdin.read()), flush=True)\n"
    )
    pid = spawn([sys.executable, "-c", script], log, os.environ)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert log.read_text() == "earlier run\nown session True\nto stderr\nstdin ''\n"


def sleeper_with_a_child(tmp_path: Path) -> tuple[int, int]:
    """A spawned shell and the `sleep` it started (same process group); returns both pids."""
    child_pid = tmp_path / "child.pid"
    pid = spawn(["/bin/sh", "-c", f"sleep 60 & echo $! > {child_pid}; wait"], tmp_path / "sh.log", os.environ)
    assert wait_until(lambda: child_pid.exists() and child_pid.read_text().strip())
    return pid, int(child_pid.read_text())


def test_terminate_a_group_stops_the_process_and_its_children(tmp_path: Path) -> None:
    pid, child = sleeper_with_a_child(tmp_path)
    terminate(pid, 10.0, group=True)
    assert not is_running(pid)
    assert wait_until(lambda: not is_running(child))


def test_terminate_a_pid_leaves_its_children_alone(tmp_path: Path) -> None:
    pid, child = sleeper_with_a_child(tmp_path)
    try:
        terminate(pid, 10.0, group=False)
        assert not is_running(pid)
        assert is_running(child)
    finally:
        os.kill(child, 15)


def test_terminate_kills_a_process_that_ignores_sigterm(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    script = (
        "import pathlib, signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        f"pathlib.Path({str(ready)!r}).touch()\n"
        "time.sleep(60)\n"
    )
    pid = spawn([sys.executable, "-c", script], tmp_path / "stubborn.log", os.environ)
    assert wait_until(ready.exists)
    started = time.monotonic()
    terminate(pid, 0.3, group=False)
    assert wait_until(lambda: not is_running(pid))
    assert time.monotonic() - started < 5


def test_terminate_an_exited_process_is_harmless(tmp_path: Path) -> None:
    pid = spawn([sys.executable, "-c", "pass"], tmp_path / "quick.log", os.environ)
    os.waitpid(pid, 0)
    terminate(pid, 1.0, group=True)
    terminate(pid, 1.0, group=False)


def test_a_second_copy_of_a_recsys_process_is_refused_with_a_stack_error(tmp_path: Path) -> None:
    processes = Processes(Settings(run_dir=tmp_path, _env_file=None))
    # Stands in for a running `recsys worker`: its command line names the recsys executable and the command.
    pid = spawn([sys.executable, "-c", "import time; time.sleep(60)", RECSYS, "worker"], tmp_path / "w.log", os.environ)
    try:
        processes.root.mkdir(parents=True)
        (processes.root / "worker.json").write_text(json.dumps({"pid": pid, "args": ["worker"]}))
        assert wait_until(lambda: processes.running("worker"))  # once its command line is readable
        with pytest.raises(StackError, match=r"worker is already running \(pid file .*\); `recsys down` first"):
            processes.start("worker", ["worker"], dict(os.environ))
    finally:
        terminate(pid, 10.0, group=True)

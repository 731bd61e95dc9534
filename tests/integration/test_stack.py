"""`recsys stack` against real processes: idempotent up, clean down, clear errors."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from stack import LocalStack, StackError
from stack.scratch import free_port, stack_settings

pytestmark = pytest.mark.integration


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.split(") ")[-1][:1] != "Z"


def test_up_twice_is_harmless_and_down_leaves_nothing(tmp_path: Path) -> None:
    local = LocalStack(stack_settings(tmp_path))
    try:
        first = local.up()
        assert all(s.healthy for s in first)
        pids = {s.name: s.pid for s in first}

        second = local.up()
        assert {s.name: s.pid for s in second} == pids  # nothing restarted, nothing duplicated
        assert all(s.healthy for s in second)
    finally:
        stopped = local.down()
    assert sorted(stopped) == ["broker", "redis"]
    assert not any(_alive(pid) for pid in pids.values() if pid)
    assert all(not s.running for s in local.status())
    assert local.down() == []  # nothing of ours left to stop


def test_down_never_touches_a_process_it_did_not_start(tmp_path: Path) -> None:
    local = LocalStack(stack_settings(tmp_path))
    local.up()
    pid_file = local.root / "redis.pid"
    record = pid_file.read_text()
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        # A stale pid file pointing at someone else's process (a recycled pid) must be ignored.
        real_pid = int(json.loads(record)["pid"])
        pid_file.write_text(record.replace(str(real_pid), str(stranger.pid)))
        assert local.down() == ["broker"]
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()
        os.kill(real_pid, 15)


def test_taken_port_is_reported_clearly(tmp_path: Path) -> None:
    settings = stack_settings(tmp_path)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", settings.redis_port))
        squatter.listen()
        with pytest.raises(StackError, match=f"port {settings.redis_port} .* already in use"):
            LocalStack(settings).up()
    LocalStack(settings).down()


def test_cli_taken_port_is_one_line_and_non_zero(tmp_path: Path) -> None:
    port = free_port()
    env = os.environ | {
        "RECSYS_BROKER_URL": f"kafka://127.0.0.1:{port}",
        "RECSYS_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
        "RECSYS_RUN_DIR": str(tmp_path),
    }
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        result = subprocess.run(
            [sys.executable, "-m", "cli.main", "stack", "up"], env=env, capture_output=True, text=True, timeout=60
        )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert f"port {port}" in result.stderr and "already in use" in result.stderr
    assert "Traceback" not in result.stderr


def test_server_that_dies_at_start_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "redis-server"
    fake.write_text("#!/bin/sh\necho 'FATAL: cannot start' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    local = LocalStack(stack_settings(tmp_path / "run"))
    try:
        with pytest.raises(StackError, match=r"redis exited at start \(FATAL: cannot start\)"):
            local.up()
    finally:
        local.down()

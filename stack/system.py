"""The project's own long-running processes (stream worker, archiver, API, UI, replay) started in the background with a
pid file and a log each, and stopped again: what `recsys up` / `recsys down` use, next to `LocalStack`."""

from __future__ import annotations

import json
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from common.settings import Settings
from stack.process import StackError, spawn, terminate

RECSYS = str(Path(sys.executable).parent / "recsys")
STOP_ORDER = ("replay", "ui", "api", "archiver", "worker")


@dataclass(frozen=True)
class Process:
    name: str
    pid: int
    running: bool
    log: Path


class Processes:
    def __init__(self, settings: Settings) -> None:
        self.root = settings.run_dir / "system"
        self.logs = settings.run_dir / "logs"

    def log_file(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def start(self, name: str, args: list[str], env: dict[str, str]) -> int:
        """`recsys <args>` in its own session, output to logs/<name>.log; refuses to start a second copy."""
        if self._recorded(name) is not None:
            raise StackError(f"{name} is already running (pid file {self._pid_file(name)}); `recsys down` first")
        self.root.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        pid = spawn([RECSYS, *args], self.log_file(name), env)
        self._pid_file(name).write_text(json.dumps({"pid": pid, "args": args, "started_at": time.time()}))
        return pid

    def running(self, name: str) -> bool:
        return self._recorded(name) is not None

    def stop(self, timeout_s: float = 20.0) -> list[str]:
        """Stop everything started here (replay first, worker last); returns the names stopped."""
        stopped = []
        for name in STOP_ORDER:
            pid = self._recorded(name)
            if pid is not None:
                terminate(pid, timeout_s, group=True)  # the process and its children (uvicorn workers, streamlit)
                stopped.append(name)
            self._pid_file(name).unlink(missing_ok=True)
        return stopped

    def status(self) -> list[Process]:
        return [Process(name, pid, True, self.log_file(name)) for name in STOP_ORDER
                if (pid := self._recorded(name)) is not None]

    def _pid_file(self, name: str) -> Path:
        return self.root / f"{name}.json"

    def _recorded(self, name: str) -> int | None:
        """The pid, if it is alive and still runs the `recsys` command we started (pids get recycled)."""
        try:
            record = json.loads(self._pid_file(name).read_text())
            cmdline = Path(f"/proc/{record['pid']}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError, KeyError):
            return None
        expected = [RECSYS.encode(), *(a.encode() for a in record["args"][:1])]
        pid: int = record["pid"]
        return pid if any(expected[0] in part for part in cmdline) and expected[1] in cmdline else None


def wait_http(url: str, timeout_s: float, alive: Callable[[], bool] = lambda: True) -> bool:
    """True once `url` answers 200; False after `timeout_s`, or as soon as `alive()` says the server died."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and alive():
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return True
        except OSError:
            time.sleep(0.2)
    return False

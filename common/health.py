"""Heartbeats of the long-running processes that serve no HTTP (the stream worker, the archiver, the batch
scheduler): each writes a small JSON file under `<run_dir>/health/` every few seconds, and `recsys health
COMPONENT` (a container's healthcheck) says whether it is fresh. A file, not Redis: the archiver talks to no
Redis, and a container's check must see its own process, not a sibling's."""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

COMPONENTS = ("stream", "archive", "batch")


def heartbeat_path(run_dir: Path, component: str) -> Path:
    return run_dir / "health" / f"{component}.json"


def beat(run_dir: Path, component: str, **fields: Any) -> None:
    """Write the heartbeat (renamed into place, so a reader never sees half a file)."""
    path = heartbeat_path(run_dir, component)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_text(json.dumps({"at": time.time(), "pid": os.getpid(), **fields}))
    temporary.replace(path)


@dataclass(frozen=True)
class Verdict:
    healthy: bool
    message: str


def check(run_dir: Path, component: str, max_age_s: float, now: float | None = None,
          max_running_s: float | None = None) -> Verdict:
    """Fresh within `max_age_s`, and (for a job) not running for longer than `max_running_s`."""
    path = heartbeat_path(run_dir, component)
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return Verdict(False, f"{component}: no heartbeat at {path} (not started, or another run folder)")
    now = time.time() if now is None else now
    age = now - float(state.get("at", 0))
    details = ", ".join(f"{k} {v}" for k, v in state.items() if k not in ("at", "pid"))
    if age > max_age_s:
        return Verdict(False, f"{component}: last heartbeat {age:,.0f} s ago (pid {state.get('pid')}; at most "
                              f"{max_age_s:,.0f} s): {details}")
    running_since = state.get("running_since")
    if max_running_s is not None and running_since is not None and now - float(running_since) > max_running_s:
        return Verdict(False, f"{component}: a run has been going for {now - float(running_since):,.0f} s "
                              f"(at most {max_running_s:,.0f} s)")
    return Verdict(True, f"{component}: alive ({details or 'no details'})")


class Heartbeat:
    """For a process whose main thread blocks for long (the batch scheduler runs a job of many minutes): a daemon
    thread beats every `every_s` with whatever `update` last said."""

    def __init__(self, run_dir: Path, component: str, every_s: float = 15.0) -> None:
        self.run_dir, self.component, self.every_s = run_dir, component, every_s
        self._fields: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{component}", daemon=True)

    def start(self) -> Heartbeat:
        beat(self.run_dir, self.component)
        self._thread.start()
        return self

    def update(self, **fields: Any) -> None:
        with self._lock:
            self._fields = fields
        beat(self.run_dir, self.component, **fields)

    def _run(self) -> None:
        while True:
            time.sleep(self.every_s)
            with self._lock:
                fields = dict(self._fields)
            beat(self.run_dir, self.component, **fields)

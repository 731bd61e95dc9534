"""Heartbeat files and the verdict `recsys health` gives on them."""

from __future__ import annotations

import json
import time
from pathlib import Path

from common.health import Heartbeat, beat, check, heartbeat_path


def test_a_fresh_heartbeat_is_healthy_and_says_what_it_carries(tmp_path: Path) -> None:
    beat(tmp_path, "stream", lag=12, last_batch_at=1700000000.0)
    verdict = check(tmp_path, "stream", max_age_s=60)
    assert verdict.healthy and "lag 12" in verdict.message


def test_a_stale_or_missing_heartbeat_is_not(tmp_path: Path) -> None:
    assert not check(tmp_path, "archive", max_age_s=60).healthy  # never started
    beat(tmp_path, "archive")
    later = time.time() + 61
    verdict = check(tmp_path, "archive", max_age_s=60, now=later)
    assert not verdict.healthy and "61 s ago" in verdict.message


def test_a_job_running_too_long_is_not_healthy(tmp_path: Path) -> None:
    beat(tmp_path, "batch", state="running", running_since=time.time() - 5 * 3600)
    assert not check(tmp_path, "batch", max_age_s=120, max_running_s=4 * 3600).healthy
    beat(tmp_path, "batch", state="waiting", next_run="2026-12-05 02:00 UTC")
    assert check(tmp_path, "batch", max_age_s=120, max_running_s=4 * 3600).healthy


def test_the_heartbeat_thread_keeps_beating_while_the_main_thread_is_busy(tmp_path: Path) -> None:
    heartbeat = Heartbeat(tmp_path, "batch", every_s=0.05).start()
    heartbeat.update(state="running", running_since=1)
    first = json.loads(heartbeat_path(tmp_path, "batch").read_text())["at"]
    time.sleep(0.3)
    again = json.loads(heartbeat_path(tmp_path, "batch").read_text())
    assert again["at"] > first and again["state"] == "running"

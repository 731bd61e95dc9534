"""The session's check for processes a test left running finds them by the mark they inherit."""

from __future__ import annotations

import os
import subprocess
import uuid

from tests.conftest import SESSION_MARK, leftover_processes


def test_a_process_carrying_the_mark_is_found_and_others_are_not() -> None:
    mark = uuid.uuid4().hex
    marked = subprocess.Popen(["sleep", "30"], env=os.environ | {SESSION_MARK: mark})
    unmarked = subprocess.Popen(["sleep", "30"], env=os.environ | {SESSION_MARK: "another"})
    try:
        found = leftover_processes(mark, os.getpid())
        assert list(found) == [marked.pid] and found[marked.pid].startswith("sleep 30")
    finally:
        for process in (marked, unmarked):
            process.kill()
            process.wait()
    assert leftover_processes(mark, os.getpid()) == {}

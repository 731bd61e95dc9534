"""A batch job that dies inside native code ends as one clear line and exit code 3, never a signal; other exits
pass through."""

from __future__ import annotations

import ctypes
from pathlib import Path

import pytest
import typer

from cli.guard import CRASH_EXIT, run_in_child


def _segfault() -> None:
    ctypes.string_at(0)  # reads address 0: SIGSEGV, as a crash inside a BLAS kernel would


def test_a_native_crash_is_one_line_and_exit_3(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    crash_log = tmp_path / "crash.txt"
    with pytest.raises(typer.Exit) as caught:
        run_in_child(_segfault, crash_log)
    assert caught.value.exit_code == CRASH_EXIT
    lines = capfd.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "crashed inside native code (SIGSEGV)" in lines[0] and str(crash_log) in lines[0]
    assert "_segfault" in crash_log.read_text()  # the Python stack where it died


def _known_failure() -> None:
    raise typer.Exit(code=2)


def test_a_known_failure_keeps_its_exit_code_and_success_leaves_no_crash_log(tmp_path: Path) -> None:
    with pytest.raises(typer.Exit) as caught:
        run_in_child(_known_failure, tmp_path / "crash.txt")
    assert caught.value.exit_code == 2
    run_in_child(lambda: None, tmp_path / "crash.txt")
    assert not (tmp_path / "crash.txt").exists()

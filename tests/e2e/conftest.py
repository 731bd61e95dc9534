from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

Recsys = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def recsys(tmp_path: Path) -> Recsys:
    """Run the `recsys` console script as a user would, in a scratch working directory."""
    script = Path(sys.executable).parent / "recsys"

    def run(*args: str, check: bool = True, timeout: float = 300,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        env = os.environ | {"RECSYS_RUN_DIR": str(tmp_path / ".run"), "RECSYS_DATA_DIR": str(tmp_path / "data"),
               "RECSYS_ARTIFACTS_DIR": str(tmp_path / "artifacts")} | (env or {})
        result = subprocess.run(
            [str(script), *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout
        )
        if check and result.returncode != 0:
            raise AssertionError(f"recsys {' '.join(args)} exited {result.returncode}: {result.stderr}")
        return result

    return run

"""No secret-looking value is tracked in git (the compose setup reads them from the environment or `.env`)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
ASSIGNMENT = re.compile(
    r"""(?i)(\w*(?:password|passwd|secret|api[_-]?key|token|requirepass)\w*)["']?\s*[:=]\s*["']?([^\s"'#,]{8,})""")
PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")
# Placeholders and test values, not secrets.
HARMLESS = re.compile(r"(?i)(change-?me|example|test|\$\{|\$\$|<|\(|\[|\.|none|secretstr)")


def tracked_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [ROOT / name for name in out.splitlines()]


def test_no_secret_is_committed() -> None:
    files = tracked_files()
    assert not [f for f in files if f.name == ".env"], ".env holds real secrets and must stay untracked"
    found = []
    for path in files:
        if path.suffix in {".png", ".gz", ".npz"} or not path.is_file() or path == Path(__file__):
            continue
        text = path.read_text(errors="ignore")
        found += [f"{path.relative_to(ROOT)}: {m.group(0)}" for m in ASSIGNMENT.finditer(text)
                  if not HARMLESS.search(m.group(2))]
        if PRIVATE_KEY.search(text):
            found.append(f"{path.relative_to(ROOT)}: a private key")
    assert found == []


def test_the_scanner_catches_a_secret() -> None:
    assert ASSIGNMENT.search('REDIS_PASSWORD=hunter2hunter2')
    assert not HARMLESS.search("hunter2hunter2")
    assert HARMLESS.search("change-me")

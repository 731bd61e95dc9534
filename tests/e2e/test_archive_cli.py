"""`recsys batch run --source archive` as a user runs it: the model card says it read the archive, how many lines
and which window; --data with --source archive is refused."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from common.archive import Archive, event_day, events_table
from common.data import load_history, load_mapping
from common.events import PurchaseEvent
from producers.replay import to_events
from tests.e2e.conftest import Recsys

pytestmark = pytest.mark.e2e


def test_batch_run_from_the_archive_names_its_source_in_the_model_card(recsys: Recsys, tmp_path: Path) -> None:
    recsys("data", "generate", "--customers", "200", "--products", "80", "--lines", "3000", "--seed", "9")
    lines = load_history(tmp_path / "data" / "synthetic", load_mapping("case_study")).lines
    by_day: dict[str, list[PurchaseEvent]] = {}
    for event in to_events(lines):
        by_day.setdefault(event_day(event), []).append(event)
    archive = Archive(str(tmp_path / ".run" / "archive"))  # the default location under the run folder
    for day, events in by_day.items():
        archive.write(day, events_table(events))

    out = recsys("batch", "run", "--source", "archive", "--no-publish").stdout
    assert f"{len(lines):,} distinct valid purchase lines from archive" in out
    version = re.search(r"^model (\S+): artifacts", out, re.MULTILINE)
    assert version, out
    card = json.loads((tmp_path / "artifacts" / "models" / version.group(1) / "model_card.json").read_text())
    assert card["source"] == {"kind": "archive", "location": archive.uri, "lines": len(lines),
                              "window": {"start": str(lines["event_time"].min()),
                                         "end": str(lines["event_time"].max())}}

    wrong = recsys("batch", "run", "--source", "archive", "--data", "somewhere", check=False)
    message = " ".join(wrong.stderr.replace("│", " ").split())  # typer draws usage errors in a box
    assert wrong.returncode == 2 and "--data reads a file; it cannot be combined with --source archive" in message

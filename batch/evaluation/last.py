"""The nights that do not evaluate. A full evaluation (temporal split, every model, the ranker's windows and
settings) costs more than the rest of the nightly job together on a big shop, and its choices change slowly: a run
evaluates when the newest evaluation among the job's versions is `every_days` old (or missing, or made by another
engine); the nights between refit every model on all data and the ranker on the latest window with the settings
that evaluation chose, and carry its report (marked with the version that made it)."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from batch.evaluation.tuning import Tuned

REPORT_FILES = ("evaluation.json", "params.json", "model_card.json")  # what a version needs to be reused
CARRIED_FILES = ("evaluation.md", "evaluation.png", "params.json")  # copied as they are into a refit's folder


@dataclass
class LastEvaluation:
    version: str  # the version whose run evaluated
    folder: Path  # a version folder carrying its report (the evaluating one, or a refit after it)
    summary: dict[str, Any]  # its evaluation.json
    tuned: Tuned  # its params.json: model settings, blend weights, the ranker's settings
    engine: str

    @property
    def evaluated_at(self) -> datetime:
        return datetime.strptime(self.version, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)

    def carry_to(self, folder: Path) -> list[Path]:
        """The report into a refit's version folder; its evaluation.json names the version that evaluated."""
        folder.mkdir(parents=True, exist_ok=True)
        files = [folder / "evaluation.json"]
        files[0].write_text(json.dumps(self.summary | {"evaluated_in": self.version}, indent=2, default=str))
        for name in CARRIED_FILES:
            if (self.folder / name).exists():
                files.append(Path(shutil.copy2(self.folder / name, folder / name)))
        return files


def last_evaluation(artifacts: Path) -> LastEvaluation | None:
    """The newest version folder under `artifacts`/models with a complete report, None when there is none."""
    folders = sorted((artifacts / "models").glob("*"), reverse=True) if (artifacts / "models").is_dir() else []
    for folder in folders:
        if all((folder / name).exists() for name in REPORT_FILES):
            summary = json.loads((folder / "evaluation.json").read_text())
            engine = json.loads((folder / "model_card.json").read_text()).get("engine", "")
            version = str(summary.get("evaluated_in", folder.name))
            return LastEvaluation(version, folder, summary, Tuned.from_file(folder / "params.json"), str(engine))
    return None


def why_evaluate(last: LastEvaluation | None, engine: str, now: datetime, every_days: int) -> str | None:
    """Why this run evaluates; None when it refits with `last`'s settings."""
    if last is None:
        return "no evaluation among the versions yet"
    if last.engine != engine:
        return f"the last evaluation ({last.version}) was made by the {last.engine} engine"
    if last.summary.get("ranker", {}).get("trained") and not last.tuned.ranker:
        return f"the last evaluation ({last.version}) kept no ranker settings (an older version made it)"
    age = now - last.evaluated_at
    if age >= timedelta(days=every_days):
        return f"the last evaluation ({last.version}) is {age.days} days old (every {every_days})"
    return None

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from batch.evaluation.last import LastEvaluation, last_evaluation, why_evaluate
from batch.evaluation.tuning import Tuned


def _version(models: Path, name: str, summary: dict[str, object] | None, engine: str = "single-machine",
             ranker: dict[str, object] | None = None) -> Path:
    folder = models / name
    folder.mkdir(parents=True)
    (folder / "model_card.json").write_text(json.dumps({"engine": engine}))
    if summary is not None:
        (folder / "evaluation.json").write_text(json.dumps(summary))
        (folder / "params.json").write_text(json.dumps(Tuned(ranker=ranker or {}).to_dict()))
        (folder / "evaluation.md").write_text(f"# report of {name}\n")
    return folder


def test_the_newest_complete_report_wins_and_names_the_version_that_evaluated(tmp_path: Path) -> None:
    models = tmp_path / "models"
    _version(models, "20261201T020000Z", {"split": "a"}, ranker={"trees": 40})
    _version(models, "20261202T020000Z", {"split": "a", "evaluated_in": "20261201T020000Z"}, ranker={"trees": 40})
    _version(models, "20261203T020000Z", None)  # a run that stopped before its report
    last = last_evaluation(tmp_path)
    assert last is not None
    assert last.folder == models / "20261202T020000Z" and last.version == "20261201T020000Z"
    assert last.evaluated_at == datetime(2026, 12, 1, 2, tzinfo=UTC)
    assert last.tuned.ranker == {"trees": 40} and last.engine == "single-machine"
    assert last_evaluation(tmp_path / "nothing") is None


def test_a_refit_carries_the_report_marked_with_the_version_that_made_it(tmp_path: Path) -> None:
    folder = _version(tmp_path / "models", "20261201T020000Z", {"split": "2026-11-01"})
    last = last_evaluation(tmp_path)
    assert last is not None
    into = tmp_path / "models" / "20261202T020000Z"
    written = last.carry_to(into)
    assert {p.name for p in written} == {"evaluation.json", "evaluation.md", "params.json"}
    assert json.loads((into / "evaluation.json").read_text()) == {"split": "2026-11-01",
                                                                  "evaluated_in": "20261201T020000Z"}
    assert (into / "evaluation.md").read_text() == (folder / "evaluation.md").read_text()


def test_a_run_evaluates_when_there_is_no_report_another_engine_made_it_or_it_is_old() -> None:
    last = LastEvaluation("20261201T020000Z", Path("."), {}, Tuned(), "single-machine")
    six_days_on = datetime(2026, 12, 7, 1, 59, tzinfo=UTC)
    assert why_evaluate(None, "single-machine", six_days_on, 7) == "no evaluation among the versions yet"
    assert why_evaluate(last, "single-machine", six_days_on, 7) is None
    assert "spark" not in str(why_evaluate(last, "single-machine", six_days_on, 7))
    assert "single-machine engine" in str(why_evaluate(last, "spark", six_days_on, 7))
    assert "is 7 days old (every 7)" in str(why_evaluate(last, "single-machine", datetime(2026, 12, 8, 2, tzinfo=UTC),
                                                          7))
    assert why_evaluate(last, "single-machine", datetime(2026, 12, 2, 2, tzinfo=UTC), 1) is not None
    older = LastEvaluation("20261201T020000Z", Path("."), {"ranker": {"trained": True}}, Tuned(), "single-machine")
    assert "kept no ranker settings" in str(why_evaluate(older, "single-machine", six_days_on, 7))
    older.tuned.ranker = {"trees": 40}
    assert why_evaluate(older, "single-machine", six_days_on, 7) is None

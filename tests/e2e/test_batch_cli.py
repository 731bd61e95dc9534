from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from batch.evaluation.metrics import mean_metrics
from batch.evaluation.result import EvaluationOptions
from batch.models import Recommender
from batch.pipeline import split_dates
from common.data import load_history, load_mapping
from tests.e2e.conftest import Recsys

pytestmark = pytest.mark.e2e


@pytest.fixture
def shop(recsys: Recsys, tmp_path: Path) -> Path:
    recsys("data", "generate", "--customers", "600", "--products", "200", "--lines", "15000", "--seed", "4")
    return tmp_path / "data" / "synthetic"


def test_evaluate_exports_lists_anyone_can_rescore(recsys: Recsys, shop: Path, tmp_path: Path) -> None:
    out = recsys("batch", "evaluate", "--data", str(shop), "--preset", "case_study", "--export-recs", "recs.csv",
                 "--out", "eval").stdout
    assert "hybrid" in out and "case-study in-sample protocol" in out
    report = json.loads((tmp_path / "eval" / "evaluation.json").read_text())
    for name in ("evaluation.md", "evaluation.png", "params.json"):
        assert (tmp_path / "eval" / name).stat().st_size > 0

    # Recompute the served model's all-items metrics from the exported lists and the raw history.
    lines = load_history(shop, load_mapping("case_study")).lines
    split, _ = split_dates(lines, EvaluationOptions())
    assert report["split"] == str(split.date())
    before, after = lines[lines["event_time"] < split], lines[lines["event_time"] >= split]
    bought_after = after.groupby("customer_id")["product_id"].agg(set)
    recs = pd.read_csv(tmp_path / "recs.csv", dtype=str).sort_values(["customer_id", "rank"], key=_numeric_rank)
    ranked = recs.groupby("customer_id", sort=True)["product_id"].agg(list)
    evaluated = sorted(set(before["customer_id"]) & set(after["customer_id"]))
    assert list(ranked.index) == evaluated
    expected = mean_metrics([ranked[c] for c in evaluated], [bought_after[c] for c in evaluated], [5, 10, 20],
                            before["product_id"].nunique())
    served = report["table"]["all_items"][report["served"]]
    assert report["served"] == ("ranker" if report["ranker"]["trained"] else "hybrid")
    for metric in ("precision@5", "recall@10", "ndcg@10", "map@20", "hit_rate@10", "coverage@10"):
        assert served[metric] == pytest.approx(expected[metric], abs=1e-9), metric


def _numeric_rank(column: pd.Series) -> pd.Series:
    return column.astype(int) if column.name == "rank" else column


def test_run_without_publish_writes_a_versioned_folder(recsys: Recsys, shop: Path, tmp_path: Path) -> None:
    out = recsys("batch", "run", "--data", str(shop), "--no-publish").stdout
    match = re.search(r"^model (\S+): artifacts", out, re.MULTILINE)
    assert match, out
    version = match.group(1)
    folder = tmp_path / "artifacts" / "models" / version
    card = json.loads((folder / "model_card.json").read_text())
    assert card["version"] == version and card["weights"]["repeat"] == 1.0
    segments = pd.read_csv(folder / "segments.csv")
    assert len(segments) == card["data"]["customers"]
    for png in ("sales_by_month.png", "sales_by_category.png", "distributions.png", "segments.png",
                "evaluation.png"):
        assert (folder / png).stat().st_size > 1000
    assert "load/clean:" in out and "peak RSS" in out


def test_the_nights_between_evaluations_refit_with_the_last_settings_and_carry_its_report(
        recsys: Recsys, shop: Path, tmp_path: Path) -> None:
    """The first run evaluates; the next (within RECSYS_BATCH_EVALUATE_EVERY_DAYS) does not, carries that report
    and, on a shop below the fit sample, serves exactly what the evaluating night served; --evaluate evaluates."""
    def run(*extra: str) -> tuple[str, Path]:
        out = recsys("batch", "run", "--data", str(shop), "--no-publish", *extra).stdout
        match = re.search(r"^model (\S+): artifacts", out, re.MULTILINE)
        assert match, out
        return out, tmp_path / "artifacts" / "models" / match.group(1)

    first_out, first = run()
    assert "evaluating: no evaluation among the versions yet" in first_out and "ranker: train:" in first_out
    second_out, second = run()
    assert f"not evaluating: the settings and report of the evaluation in {first.name}" in second_out
    assert "ranker: train:" not in second_out and "evaluate:" not in second_out
    assert "ranker: the latest window:" in second_out
    card, evaluated = (json.loads((f / "model_card.json").read_text()) for f in (second, first))
    assert card["evaluation"]["evaluated_in"] == first.name and "evaluated_in" not in evaluated["evaluation"]
    assert card["evaluation"]["table"] == evaluated["evaluation"]["table"]
    assert card["model"] == evaluated["model"] == "ranker"
    report = json.loads((second / "evaluation.json").read_text())
    assert report["evaluated_in"] == first.name
    assert json.loads((second / "params.json").read_text()) == json.loads((first / "params.json").read_text())
    served = [Recommender.load(f / "ranker") for f in (first, second)]
    customers = served[0].customer_ids
    np.testing.assert_array_equal(served[0].recommend_ids(customers, 10), served[1].recommend_ids(customers, 10))
    third_out, _ = run("--evaluate")
    assert "evaluating: asked for" in third_out and "ranker: train:" in third_out


def test_a_bad_split_date_is_a_clear_error(recsys: Recsys, shop: Path) -> None:
    result = recsys("batch", "evaluate", "--data", str(shop), "--split-date", "2031-01-01", check=False)
    assert result.returncode == 2
    assert "empty side" in result.stderr and "Traceback" not in result.stderr


def test_a_memory_budget_too_small_for_the_data_is_one_line_naming_the_setting(recsys: Recsys, shop: Path,
                                                                                tmp_path: Path) -> None:
    result = recsys("batch", "run", "--data", str(shop), "--no-publish", check=False,
                    env={"RECSYS_BATCH_MEMORY_GB": "0.05"})
    assert result.returncode == 2
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("error: ") and "RECSYS_BATCH_MEMORY_GB is 0.05" in errors[0]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "artifacts" / "models").exists()  # stopped before fitting or writing anything


def test_the_spark_engine_without_pyspark_is_a_one_line_error(tmp_path: Path) -> None:
    hide_pyspark = "import sys; sys.modules['pyspark'] = None; from cli.main import app; app()"
    result = subprocess.run([sys.executable, "-c", hide_pyspark, "batch", "run", "--engine", "spark", "--data",
                             str(tmp_path)], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.startswith("error: the Spark engine needs pyspark: pip install -e '.[spark]'")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_the_spark_engine_without_java_is_a_one_line_error(shop: Path, tmp_path: Path) -> None:
    if find_spec("pyspark") is None:
        pytest.skip("needs pyspark, to get as far as looking for Java (pip install -e '.[spark]')")
    no_java = {k: v for k, v in os.environ.items() if k != "JAVA_HOME"} | {"PATH": str(Path(sys.executable).parent)}
    result = subprocess.run([str(Path(sys.executable).parent / "recsys"), "batch", "run", "--engine", "spark",
                             "--data", str(shop), "--no-publish"], env=no_java, cwd=tmp_path, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2
    assert "error: Spark needs Java 17 and none was found (JAVA_HOME or java on PATH)" in result.stderr
    assert "Traceback" not in result.stderr

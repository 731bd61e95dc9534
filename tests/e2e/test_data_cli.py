from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import UCI_PATH
from tests.e2e.conftest import Recsys

pytestmark = pytest.mark.e2e


def test_help_lists_the_jobs(recsys: Recsys) -> None:
    out = recsys("--help").stdout
    for command in ("stack", "data"):
        assert command in out


def test_generate_then_inspect(recsys: Recsys, tmp_path: Path) -> None:
    recsys("data", "generate", "--customers", "300", "--products", "120", "--lines", "4000", "--seed", "3")
    folder = tmp_path / "data" / "synthetic"
    raw = pd.read_csv(folder / "dataset_sample_1.csv")

    result = recsys("data", "inspect", str(folder), "--preset", "case_study", "--report", "report.json")
    report = json.loads((tmp_path / "report.json").read_text())

    assert "reconciles (raw = kept + removed): yes" in result.stdout
    cleaning = report["cleaning"]
    assert cleaning["raw_rows"] == len(raw)
    assert cleaning["removed"]["duplicate"] == int(raw.duplicated().sum())
    assert cleaning["removed"]["non_positive_units"] == int((raw["UNIDADES_BRUTAS"] <= 0).sum())
    assert cleaning["kept_rows"] == report["eda"]["lines"]
    assert cleaning["raw_rows"] == cleaning["kept_rows"] + sum(cleaning["removed"].values())


def test_generate_is_deterministic(recsys: Recsys, tmp_path: Path) -> None:
    for out in ("a", "b"):
        recsys("data", "generate", "--customers", "100", "--products", "50", "--lines", "1000", "--out", out)
    for name in ("dataset_sample_1.csv", "dataset_sample_2.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_inspect_missing_file_is_one_clear_line(recsys: Recsys) -> None:
    result = recsys("data", "inspect", "nowhere.csv", "--preset", "uci", check=False)
    assert result.returncode == 2
    assert result.stderr.strip() == "error: transactions file not found: nowhere.csv"


def test_inspect_wrong_preset_names_the_missing_columns(recsys: Recsys, fixtures: Path) -> None:
    result = recsys("data", "inspect", str(fixtures / "uci_small.csv"), "--preset", "case_study", check=False)
    assert result.returncode == 2
    assert "missing column(s) 'UUID_CLIENTE_CONSUMIDOR'" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.realdata
@pytest.mark.skipif(not UCI_PATH.exists(), reason=f"{UCI_PATH} not present")
def test_online_retail_report_reconciles(recsys: Recsys, tmp_path: Path) -> None:
    recsys("data", "inspect", str(UCI_PATH), "--preset", "uci", "--report", "uci.json")
    cleaning = json.loads((tmp_path / "uci.json").read_text())["cleaning"]

    assert cleaning["raw_rows"] == 541_909
    assert cleaning["raw_rows"] == cleaning["kept_rows"] + sum(cleaning["removed"].values())
    # The customer / cancellation / quantity / price rules alone give the documented clean subset.
    assert cleaning["kept_after"]["non_positive_amount"] == 397_884
    assert cleaning["removed"]["missing_customer"] == 135_080

"""The Spark engine on a real local Spark (local[2]) and the real local stack: Spark's models pass the model
contract, Spark's pair rules are the single-machine ones and FPGrowth's longer ones the library's, ALS and the
rules are scored beside the single-machine models in one evaluation table on the same split, and `recsys batch run
--engine spark` publishes a version into Redis."""

from __future__ import annotations

import itertools
import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pyspark", reason="the Spark engine's tests need pyspark (pip install -e '.[spark]')")

from pyspark.sql import SparkSession

from batch.evaluation.result import EvaluationOptions
from batch.evaluation.split import VARIANTS
from batch.interactions import Interactions
from batch.models import Recommender
from batch.pipeline import evaluate_history
from batch.publish import current_version, read_per_customer
from batch.rule_mining import RULE_COLUMNS, basket_matrix, mine_rules
from batch.spark.engine import SparkEngine
from batch.spark.history import SparkHistory
from batch.spark.models import SparkAlsRecommender, SparkRulesRecommender, fpgrowth_rules, pair_rules
from batch.spark.session import SparkOptions, spark_session
from batch.stages import Stages
from common import toplist
from stack.scratch import settings_env
from tests.integration.conftest import Isolated
from tests.integration.streamkit import RECSYS, history
from tests.unit.batch import test_models
from tests.unit.batch.test_models import ShopModel, assert_same_ranking

pytestmark = [pytest.mark.integration, pytest.mark.spark]


@pytest.fixture(scope="module")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkSession]:
    options = SparkOptions(master="local[2]", driver_memory="1g", staging=str(tmp_path_factory.mktemp("staging")))
    with spark_session(options) as session:
        yield session


@pytest.fixture(scope="module")
def shop_lines(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """A small synthetic shop: 300 customers, 300 products, about 6,000 lines over a year."""
    return history(tmp_path_factory.mktemp("shop"), customers=300, lines=6000, seed=21)


@pytest.fixture(scope="module")
def staged(spark: SparkSession, shop_lines: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[SparkHistory]:
    staged = SparkHistory.stage(spark, shop_lines, str(tmp_path_factory.mktemp("staging")))
    yield staged
    staged.remove()


# The model contract of tests/unit/batch/test_models.py, run on the Spark models on its shops (each model fitted
# once per module where the contract allows: a fit is a few Spark jobs).

shop = test_models.shop
random_shop = test_models.random_shop
SPARK_MODELS: dict[str, Callable[[SparkHistory], Recommender]] = {
    "spark_als": lambda history: SparkAlsRecommender(factors=4, iterations=5, history=history),
    "spark_rules": lambda history: SparkRulesRecommender(min_support=0.1, min_confidence=0.5, history=history),
}


def _staged(spark: SparkSession, data: Interactions, folder: Path) -> Iterator[SparkHistory]:
    staged = SparkHistory.stage(spark, data.lines, str(folder))
    yield staged
    staged.remove()


@pytest.fixture(scope="module")
def shop_history(spark: SparkSession, shop: Interactions, tmp_path_factory: pytest.TempPathFactory
                 ) -> Iterator[SparkHistory]:
    yield from _staged(spark, shop, tmp_path_factory.mktemp("staging"))


@pytest.fixture(scope="module")
def random_shop_history(spark: SparkSession, random_shop: Interactions, tmp_path_factory: pytest.TempPathFactory
                        ) -> Iterator[SparkHistory]:
    yield from _staged(spark, random_shop, tmp_path_factory.mktemp("staging"))


@pytest.fixture(scope="module", params=list(SPARK_MODELS))
def model_name(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


def test_every_spark_model_is_under_the_contract() -> None:
    registered = [name for name, cls in Recommender.registry.items() if cls.__module__ == "batch.spark.models"]
    assert sorted(registered) == sorted(SPARK_MODELS)


@pytest.fixture(scope="module")
def shop_model(model_name: str, shop_history: SparkHistory) -> ShopModel:
    return ShopModel(lambda: SPARK_MODELS[model_name](shop_history))


@pytest.fixture(scope="module")
def model(shop_model: ShopModel, shop: Interactions) -> Recommender:
    return shop_model.make().fit(shop)


class TestSparkContract(test_models.TestContract):
    """Every test of the contract, on the Spark models."""

    # The contract's check, with the model given the random shop's staged lines: a Spark model trains on the
    # history it was given, and the shop's would be refused for another window. Hence one more fixture.
    def test_ranking_equals_the_dense_ranking(  # type: ignore[override]
            self, model_name: str, random_shop: Interactions, random_shop_history: SparkHistory) -> None:
        model = SPARK_MODELS[model_name](random_shop_history).fit(random_shop)
        assert_same_ranking(model, np.append(np.arange(len(model.customer_ids)), -1), k=12)


def test_a_window_other_than_up_to_its_last_event_is_refused(staged: SparkHistory,
                                                             shop_lines: pd.DataFrame) -> None:
    first_products = shop_lines[shop_lines["product_id"].isin(shop_lines["product_id"].unique()[:50])]
    with pytest.raises(ValueError, match="must be every line up to its last event"):
        staged.window(Interactions.from_lines(first_products))


def test_pair_rules_counted_by_spark_are_the_single_machine_ones(staged: SparkHistory,
                                                                 shop_lines: pd.DataFrame) -> None:
    spark_rules = pair_rules(staged, Interactions.from_lines(shop_lines), 0.005, 0.05)
    single = mine_rules(*basket_matrix(shop_lines), 0.005, 0.05, max_len=2)
    assert len(single) > 50
    # the same counts through the same arithmetic: equal to the last bit, in the same order
    pd.testing.assert_frame_equal(spark_rules, single)


def test_fpgrowth_finds_the_librarys_rules_with_one_consequent(staged: SparkHistory,
                                                               shop_lines: pd.DataFrame) -> None:
    spark_rules = fpgrowth_rules(staged, Interactions.from_lines(shop_lines), 0.002, 0.1, max_len=3)
    single = mine_rules(*basket_matrix(shop_lines), 0.002, 0.1, max_len=3)
    single = single[single["consequents"].map(len) == 1]  # FPGrowth's rules have one consequent
    assert (single["antecedents"].map(len) == 2).sum() > 10
    key = ["antecedents", "consequents"]
    both = single.merge(spark_rules, on=key, how="outer", suffixes=("", "_spark"), indicator=True)
    assert (both["_merge"] == "both").all(), both[both["_merge"] != "both"][key].head()
    for column in RULE_COLUMNS[2:]:
        assert both[f"{column}_spark"].to_numpy() == pytest.approx(both[column].to_numpy(), rel=1e-9), column
    # ordered as the single-machine table: best confidence, then lift, then support
    ordered = spark_rules[["confidence", "lift", "support"]].to_numpy()
    assert all(tuple(a) >= tuple(b) for a, b in itertools.pairwise(ordered))


def test_spark_models_are_scored_beside_the_single_machine_ones(staged: SparkHistory, shop_lines: pd.DataFrame,
                                                                tmp_path: Path) -> None:
    evaluation = evaluate_history(shop_lines, EvaluationOptions(case_study=False), tmp_path, Stages(),
                                  progress=lambda _m: None, engine=SparkEngine(staged, compare=True))
    for variant in VARIANTS:
        table = evaluation.table[variant]
        assert {"popularity", "repeat", "ease", "als", "rules", "als (spark)", "rules (spark)", "hybrid"} <= set(table)
        # Spark counts the same pair rules, fired the same way: the same lists, so the same metrics
        for metric, value in table["rules"].items():
            assert table["rules (spark)"][metric] == pytest.approx(value, abs=1e-12), (variant, metric)
    all_items = evaluation.table["all_items"]
    # on this shop (staples, bundles, favourite categories) ALS learns more than the best-sellers, on Spark as
    # with `implicit`, and the two fits of the same model land within 15% of each other
    assert all_items["als (spark)"]["ndcg@10"] > 1.1 * all_items["popularity"]["ndcg@10"]
    assert all_items["als (spark)"]["ndcg@10"] == pytest.approx(all_items["als"]["ndcg@10"], rel=0.15)
    markdown = (tmp_path / "evaluation.md").read_text()
    assert "| als (spark) |" in markdown and "| ease |" in markdown


@pytest.mark.e2e
def test_batch_run_on_spark_publishes_a_version(isolated: Isolated, tmp_path: Path) -> None:
    lines = history(tmp_path / "data", customers=300, lines=6000, seed=9)
    env = settings_env(isolated.settings) | {"RECSYS_ARTIFACTS_DIR": str(tmp_path / "artifacts"),
                                             "RECSYS_RUN_DIR": str(tmp_path / ".run"),
                                             "RECSYS_SPARK_DRIVER_MEMORY": "1g",
                                             # no Python runs next to the executors: a Python worker would need
                                             # this interpreter and fail the run (docs/scaling.md)
                                             "PYSPARK_PYTHON": str(tmp_path / "no-python-here")}
    result = subprocess.run([RECSYS, "batch", "run", "--data", str(tmp_path / "data"), "--engine", "spark",
                             "--spark-master", "local[2]"], env=env, cwd=tmp_path, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "on local[2] (2 cores)" in result.stdout and "fit als (spark):" in result.stdout

    client, keys = isolated.redis, isolated.keys
    version = current_version(client, keys)
    assert version is not None and f"current -> {version}" in result.stdout
    card = json.loads(client.get(keys.model_card(version)) or "{}")
    assert card["engine"] == "spark" and card["built_with"]["spark_master"] == "local[2]"
    assert card["built_with"]["spark"].startswith("4.")
    assert set(card["weights"]) == {"repeat", "als", "rules", "trend"}
    assert card["data"]["lines"] == len(lines)
    customers = lines["customer_id"].nunique()
    assert len(read_per_customer(client, keys, version, "topn")) == customers
    assert len(read_per_customer(client, keys, version, "segments")) == customers
    first = str(lines["customer_id"].iloc[0])
    top = toplist.decode(client.hget(keys.model_topn(version, first), first) or "||")
    assert len(top.products) == 50 and len(set(top.products)) == 50
    assert top.scores == sorted(top.scores, reverse=True)

    folder = tmp_path / "artifacts" / "models" / version
    # The served model (the ranker over the Spark engine's generators, or the blend when it could not train).
    assert (folder / card["model"] / "arrays.npz").exists()
    if card["ranker"]["trained"]:
        assert {"als", "rules", "repeat", "trend"} <= set(card["ranker"]["generators"])
    assert len(pd.read_csv(folder / "segments.csv")) == customers
    assert "| als (spark) |" in (folder / "evaluation.md").read_text()
    assert json.loads((folder / "model_card.json").read_text())["engine"] == "spark"
    # the staged Parquet is removed once the run is over
    assert list((tmp_path / ".run" / "spark").iterdir()) == []

"""The ranker's features against hand-computed values, its candidates, and the model contract every model meets
(ranking through candidates = the dense ranking, save/load, unknown customers), on small shops with known
answers; a ranker that cannot be trained says why."""

from __future__ import annotations

from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from batch.evaluation.metrics import batch_metrics, hit_matrix, per_customer_ndcg
from batch.evaluation.split import Holdout, TemporalSplit
from batch.interactions import Interactions
from batch.models import Recommender
from batch.models.topk import top_k
from batch.ranker.candidates import collect
from batch.ranker.history import FEATURES, History
from batch.ranker.model import RankerRecommender, TrainingSet, feature_names, remember_together, training_set
from batch.ranker.stage import RankerOutcome, StaleSettings, latest_window, paired_ndcg, train_ranker
from batch.ranker.train import Untrainable, train
from tests.unit.batch.test_models import SHOP_MODELS, assert_same_ranking

START = pd.Timestamp("2024-01-01")


@pytest.fixture(scope="module")
def shop() -> Interactions:
    from tests.unit.batch.test_models import _shop

    return Interactions.from_lines(_shop())


def _generators(data: Interactions) -> dict[str, Recommender]:
    return {name: SHOP_MODELS[name].make().fit(data) for name in ("repeat", "ease", "tifu", "popularity")}


def test_history_features_equal_hand_computed_values(shop: Interactions) -> None:
    """Customer t bought A1 in three orders (days 0, 5, 9) and A2 once (day 0); the window ends on day 49."""
    history = History.of(shop)
    row = shop.rows_of(np.array(["t"]))
    a1, a2, b1 = np.searchsorted(shop.product_ids, ["A1", "A2", "B1"])
    features = history.features(np.repeat(row, 3), np.array([a1, a2, b1]))
    at = {name: i for i, name in enumerate(FEATURES)}
    assert features[0, at["orders"]] == 3 and features[1, at["orders"]] == 1 and features[2, at["orders"]] == 0
    assert features[0, at["days_since"]] == pytest.approx(40.0)  # day 49 - day 9
    assert features[0, at["baskets_since"]] == 0 and features[1, at["baskets_since"]] == 2
    assert features[0, at["cycle_days"]] == pytest.approx(4.5)  # gaps of 5 and 4 days
    assert features[0, at["cycle_ratio"]] == pytest.approx(40.0 / 4.5)
    assert np.isnan(features[1, at["cycle_days"]])  # bought once: no cycle
    assert np.isnan(features[2, at["days_since"]])  # never bought
    assert features[0, at["freq_hl7"]] == pytest.approx(sum(0.5 ** (d / 7) for d in (49, 44, 40)))
    assert features[0, at["customer_orders"]] == 3 and features[0, at["customer_basket_size"]] == pytest.approx(4 / 3)
    # A1: 40 a-buyers + t; 41 buyers, one of them (t) bought it again.
    assert features[0, at["product_buyers"]] == 41
    assert features[0, at["product_repurchase_rate"]] == pytest.approx(1 / 41)
    assert features[0, at["category_share"]] == 1.0  # every line is category "c"


def test_candidates_hold_the_customers_own_products_and_every_generators_picks(shop: Interactions) -> None:
    generators = _generators(shop)
    row = shop.rows_of(np.array(["t"]))
    found = collect(generators, row, own="repeat", pool=2)
    products = set(shop.product_ids[found.col])
    assert {"A1", "A2"} <= products  # its own, though every other generator excludes what it bought
    assert "A3" in products  # what EASE and TIFU's neighbours add
    a3 = list(shop.product_ids[found.col]).index("A3")
    ease = list(found.generators).index("ease")
    assert found.ranks[a3, ease] == 1 and found.scores[a3, ease] == pytest.approx(1.0)


def _ranker(data: Interactions) -> RankerRecommender:
    """A booster trained on labels that favour the customer's own most-bought products."""
    generators = _generators(data)
    rows = np.arange(len(data.customer_ids))
    relevant = sp.csr_matrix((data.orders > 1).astype(np.float32))
    some = sp.csr_matrix((np.ones(len(rows)), (rows, rows % len(data.product_ids))), shape=data.shape)
    labelled = training_set(generators, History.of(data), rows, (relevant + some).tocsr())
    columns = list(range(len(feature_names(list(generators)))))
    booster = lgb.train({"objective": "lambdarank", "verbose": -1, "min_data_in_leaf": 5, "seed": 1},
                        labelled.dataset(np.asarray(columns)), num_boost_round=10)
    return RankerRecommender.of(generators, History.of(data), booster, columns)


def test_the_ranker_meets_the_model_contract(tmp_path: Path) -> None:
    from tests.unit.batch.test_models import _random_shop_lines

    data = Interactions.from_lines(_random_shop_lines())
    ranker = _ranker(data)
    rows = np.append(np.arange(len(ranker.customer_ids)), -1)
    assert_same_ranking(ranker, rows, k=12)
    ranker.save(tmp_path / "ranker")
    loaded = Recommender.load(tmp_path / "ranker")
    np.testing.assert_array_equal(loaded.recommend(rows, 12)[0], ranker.recommend(rows, 12)[0])
    unknown, _ = ranker.recommend(np.array([-1]), 5)
    np.testing.assert_array_equal(unknown[0], top_k(np.zeros((1, len(data.product_ids))), 5, ranker.tie_break())[0])
    items, scores, sources = ranker.top_with_sources(np.arange(len(ranker.customer_ids)), 10)
    assert (scores[:, 0] == 1.0).all() and (np.diff(scores, axis=1) <= 1e-9).all()  # scaled, best first
    bought = ranker.seen.toarray()[np.arange(len(ranker.customer_ids))[:, None], items] > 0
    assert (np.array(ranker.sources)[sources][bought] == "repeat").all()  # own products are repeat's


def test_remembered_candidates_rank_as_freshly_scored_ones() -> None:
    from tests.unit.batch.test_models import _random_shop_lines

    data = Interactions.from_lines(_random_shop_lines())
    fresh, remembering = _ranker(data), _ranker(data)
    rows = np.arange(len(data.customer_ids))
    remembering.remember(rows[::2])
    some = np.array([6, 0, 4, 4, 2])  # remembered, out of order, repeated
    assert remembering._memo is not None
    assert remembering._memo.gather(some) is not None and remembering._memo.gather(rows) is None
    for asked in (some, rows):  # the second is not all remembered: scored afresh
        position, product, score = remembering.scored(asked)
        found, expected = fresh.ranked(asked)
        np.testing.assert_array_equal(position, found.row)
        np.testing.assert_array_equal(product, found.col)
        np.testing.assert_allclose(score, expected)
    for exclude_seen in (False, True):
        np.testing.assert_array_equal(remembering.recommend(some, 12, exclude_seen)[0],
                                      fresh.recommend(some, 12, exclude_seen)[0])


def test_rankers_of_one_window_remembered_together_score_as_each_alone() -> None:
    """A ranker and an ablation (fewer columns) over the same generators and history share one collection."""
    from tests.unit.batch.test_models import _random_shop_lines

    data = Interactions.from_lines(_random_shop_lines())
    full = _ranker(data)
    assert full.history is not None
    columns = list(range(0, len(feature_names(list(full.models))), 2))
    booster = lgb.train({"objective": "lambdarank", "verbose": -1, "min_data_in_leaf": 5, "seed": 2},
                        training_set(full.models, full.history, np.arange(len(data.customer_ids)),
                                     sp.csr_matrix((data.orders > 1).astype(np.float32))).dataset(np.asarray(columns)),
                        num_boost_round=5)
    ablation = RankerRecommender.of(full.models, full.history, booster, columns)
    rows = np.arange(len(data.customer_ids))
    remember_together([full, ablation], rows[::3][::-1])  # out of order
    for ranker in (full, ablation):
        assert ranker._memo is not None
        kept = ranker._memo.gather(rows[::3])
        assert kept is not None
        found, expected = ranker.ranked(rows[::3])
        np.testing.assert_array_equal(kept[0], found.row)
        np.testing.assert_array_equal(kept[1], found.col)
        np.testing.assert_allclose(kept[2], expected)
    assert full._memo is not None and ablation._memo is not None
    assert not np.allclose(full._memo.scores, ablation._memo.scores)  # two boosters, two scorings


def test_a_ranker_with_too_little_to_learn_from_says_why() -> None:
    empty = TrainingSet(np.zeros((3, 4), dtype=np.float32), np.array([1.0, 0, 0], dtype=np.float32),
                        np.array([3]), 1, 1)
    with pytest.raises(Untrainable, match="at least 20"):
        train(empty, empty, [0, 1])


def test_a_short_history_has_no_training_window(shop: Interactions) -> None:
    from tests.unit.batch.test_models import _shop

    lines = _shop()
    validation = TemporalSplit.at(lines, START + pd.Timedelta(days=30))
    outcome = train_ranker(lines, validation, pd.Timedelta(days=20), _generators(validation.train),
                           _generators, windows=2, max_customers=None, progress=lambda _m: None)
    assert outcome.trained is None and "no training window" in str(outcome.reason)
    assert outcome.summary() == {"trained": False, "reason": outcome.reason}


def test_per_customer_ndcg_averages_to_the_reported_one() -> None:
    rng = np.random.default_rng(0)
    relevant = sp.csr_matrix((rng.random((30, 40)) < 0.1).astype(np.float32))
    top = np.argsort(rng.random((30, 40)), axis=1)[:, :10]
    hits, n_relevant = hit_matrix(top, relevant), np.asarray(relevant.sum(axis=1)).ravel().astype(int)
    expected = batch_metrics(hits, n_relevant, 10)["ndcg@10"]
    assert per_customer_ndcg(hits, n_relevant, 10).mean() == pytest.approx(expected)


def _weekly_shop(customers: int = 300, days: int = 120) -> pd.DataFrame:
    """Every customer buys two of ten products about once a week: every window labels nearly everyone."""
    rng = np.random.default_rng(3)
    rows = [(f"c{c}", f"o{c}-{d}", START + pd.Timedelta(days=int(d)), f"P{p}")
            for c in range(customers) for d in range(c % 7, days, 7) for p in rng.choice(10, 2, replace=False)]
    lines = pd.DataFrame(rows, columns=["customer_id", "order_id", "event_time", "product_id"])
    return lines.assign(category="c", units=1, amount=1.0)


@pytest.mark.parametrize("cap", [None, 40])
def test_each_window_labels_at_most_the_capped_number_of_customers(cap: int | None) -> None:
    lines = _weekly_shop()
    validation = TemporalSplit.at(lines, START + pd.Timedelta(days=100), end=START + pd.Timedelta(days=110))
    said: list[str] = []
    train_ranker(lines, validation, pd.Timedelta(days=10), _generators(validation.train), _generators, windows=2,
                 max_customers=cap, progress=said.append, ablations=False)
    labelled = [int(m.split(": ")[1].split(" customers")[0].replace(",", "")) for m in said if "window from" in m]
    assert len(labelled) == 2
    assert all(n <= 40 for n in labelled) if cap else all(n > 200 for n in labelled)


def _learnable(groups: int, seed: int) -> TrainingSet:
    """`groups` customers of 10 candidates, 2 relevant each; feature 0 tells them apart, through noise."""
    rng = np.random.default_rng(seed)
    labels = np.tile(np.array([1, 1, 0, 0, 0, 0, 0, 0, 0, 0], dtype=np.float32), groups)
    features = np.column_stack([labels + rng.normal(0, 0.7, len(labels)), rng.random(len(labels))])
    return TrainingSet(features.astype(np.float32), labels, np.full(groups, 10), 2 * groups, 2 * groups)


def test_a_sample_keeps_whole_customers() -> None:
    whole = _learnable(120, seed=0)
    part = whole.sample(50)
    assert len(part.groups) == 50 and len(part.labels) == 500 and part.labels.sum() == 100
    rows = {tuple(r) for r in whole.features.tolist()}
    assert all(tuple(r) in rows for r in part.features.tolist())
    assert whole.sample(500) is whole


def test_settings_are_chosen_on_a_sample_past_the_limit_then_trained_on_all() -> None:
    trained = train(_learnable(120, seed=1), _learnable(40, seed=2), [0, 1], grid_max_groups=50)
    assert [t["customers"] for t in trained.tried] == [50, 50, 50, 120]
    best_of_sample = max(trained.tried[:3], key=lambda t: t["validation_ndcg@10"])
    assert trained.params["num_leaves"] == best_of_sample["num_leaves"] == trained.tried[3]["num_leaves"]
    assert trained.validation_ndcg == pytest.approx(trained.tried[3]["validation_ndcg@10"], abs=1e-4)
    assert len(train(_learnable(40, seed=1), _learnable(40, seed=2), [0, 1], grid_max_groups=50).tried) == 3


def test_paired_intervals_equal_a_hand_computed_case() -> None:
    """Customer 0 bought product 1, customer 1 product 2. Ours hits at ranks 1 and 2 (NDCG 1 and 1/log2 3), the
    baseline at rank 2 and not at all (1/log2 3 and 0): differences 1 - 1/log2 3 and 1/log2 3."""
    relevant = sp.csr_matrix((np.ones(2, dtype=np.float32), ([0, 1], [1, 2])), shape=(2, 5))
    holdout = Holdout(np.array([0, 1]), relevant, np.array([1, 1]), exclude_seen=False, eligible=2)
    lists = {"ours": np.array([[1, 0, 3], [0, 2, 3]]), "base": np.array([[0, 1, 3], [3, 4, 0]])}
    paired = paired_ndcg(lists, "ours", ["base"], holdout)["base"]
    second = 1 / np.log2(3)
    diffs = np.array([1 - second, second])
    half = 1.959963984540054 * abs(diffs[1] - diffs[0]) / np.sqrt(2) / np.sqrt(2)  # sample sd of two values
    assert paired == {"difference": round(0.5, 4), "ci_low": round(0.5 - half, 4), "ci_high": round(0.5 + half, 4),
                      "customers": 2}


def test_the_latest_window_labels_what_was_bought_after_the_split_from_generators_fitted_before_it() -> None:
    """On a shop smaller than the fit sample, the latest window is the evaluating night's: the test split's
    candidates, labelled by the test period."""
    lines = _weekly_shop()
    split = START + pd.Timedelta(days=100)
    settings = {"features": feature_names(["repeat", "ease", "tifu", "popularity"])}
    said: list[str] = []
    found = latest_window(lines, split, _generators, settings, None, 10_000, said.append)
    test = TemporalSplit.at(lines, split)
    holdout = test.holdouts["all_items"]
    expected = training_set(_generators(test.train), History.of(test.train), holdout.rows, holdout.relevant)
    np.testing.assert_array_equal(found.features, expected.features)
    np.testing.assert_array_equal(found.labels, expected.labels)
    assert found.positives == expected.positives > 0
    assert said and "latest window from" in said[0]


def test_settings_chosen_over_other_features_are_stale() -> None:
    with pytest.raises(StaleSettings):
        latest_window(_weekly_shop(), START + pd.Timedelta(days=100), _generators,
                      {"features": feature_names(["repeat", "ease"])}, None, None, lambda _m: None)


def test_an_outcome_read_back_is_served_until_its_refit_gives_up() -> None:
    reported = {"trained": True, "trees": 40}
    outcome = RankerOutcome(reported=reported)
    assert outcome.usable and outcome.summary() == reported
    outcome.give_up("the latest window: too few customers")
    assert not outcome.usable
    assert outcome.summary() == {"trained": False, "reason": "the latest window: too few customers"}
    assert not RankerOutcome(reported={"trained": False, "reason": "x"}).usable

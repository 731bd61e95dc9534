"""Every model passes the same behavioural tests on a shop with a known answer (the benfred/implicit pattern).

The shop: 40 customers buy the A trio (A1, A2, A3) together, 50 buy the B trio, so B sells more. Customer "t"
has bought A1 (three times) and A2, never A3. A collaborative model must put A3 first among new items;
popularity must put a B product first; the customer's own list must start with A1."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import batch.models
from batch.interactions import Interactions
from batch.models import (
    AlsRecommender,
    EaseRecommender,
    HybridRecommender,
    NmfRecommender,
    PopularityRecommender,
    Recommender,
    RepeatRecommender,
    RulesRecommender,
    TifuKnnRecommender,
)
from batch.models.factors import SELECTION_MARGIN
from batch.models.topk import Candidates, sorted_lookup, top_from_candidates, top_k

START = pd.Timestamp("2024-01-01")
A, B = ["A1", "A2", "A3"], ["B1", "B2", "B3"]


def _shop() -> pd.DataFrame:
    rows: list[tuple[str, str, str, pd.Timestamp]] = []
    for i in range(40):
        rows += [(f"a{i}", f"oa{i}", p, START + pd.Timedelta(days=i)) for p in A]
    for i in range(50):
        rows += [(f"b{i}", f"ob{i}", p, START + pd.Timedelta(days=i)) for p in B]
    rows += [("t", "ot1", "A1", START), ("t", "ot1", "A2", START), ("t", "ot2", "A1", START + pd.Timedelta(days=5)),
             ("t", "ot3", "A1", START + pd.Timedelta(days=9))]
    lines = pd.DataFrame(rows, columns=["customer_id", "order_id", "product_id", "event_time"])
    return lines.assign(amount=10.0, units=1, category="c", product_name=lines["product_id"], line_no=0)


@pytest.fixture(scope="module")
def shop() -> Interactions:
    return Interactions.from_lines(_shop())


@pytest.fixture(scope="module")
def random_shop() -> Interactions:
    """80 customers, 60 products with a long tail, repeat orders: enough ties and zeros to test rankings on."""
    return Interactions.from_lines(_random_shop_lines())


def _random_shop_lines() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    weights = 1.0 / np.arange(1, 61) ** 1.1
    rows: list[tuple[str, str, str, pd.Timestamp]] = []
    for c in range(80):
        for o in range(int(rng.integers(1, 5))):
            day = START + pd.Timedelta(days=int(rng.integers(0, 60)))
            for p in rng.choice(60, size=int(rng.integers(1, 6)), replace=False, p=weights / weights.sum()):
                rows.append((f"c{c:02d}", f"o{c}-{o}", f"p{p:02d}", day))
    lines = pd.DataFrame(rows, columns=["customer_id", "order_id", "product_id", "event_time"])
    return lines.assign(amount=10.0, units=1, category="c", product_name=lines["product_id"], line_no=0)


def assert_same_ranking(model: Recommender, rows: np.ndarray, k: int) -> None:
    """`recommend` (through candidates where the model has them) ranks as the dense scores do: the same scores in
    the same order, and the same products up to exact ties (equal score and popularity)."""
    for exclude_seen in (False, True):
        items, scores = model.recommend(rows, k, exclude_seen)
        dense_items, dense_scores = model.dense_top(rows, k, exclude_seen)
        np.testing.assert_allclose(scores, dense_scores, rtol=1e-9, atol=1e-12)
        for row in range(len(rows)):
            got = sorted(zip(scores[row].round(9), model.popularity[items[row]], strict=True))
            want = sorted(zip(dense_scores[row].round(9), model.popularity[dense_items[row]], strict=True))
            assert got == want, (model.name, exclude_seen, row)


@dataclass(frozen=True)
class ShopModel:
    """How a model is built for the shop, and which first new item the known answer expects of it."""

    make: Callable[[], Recommender]
    completes_the_trio: bool = True  # A3 first among t's new items; otherwise a best-selling B product


def _hybrid() -> Recommender:
    components: dict[str, tuple[str, dict[str, Any]]] = {
        "repeat": ("repeat", {}), "ease": ("ease", {"l2": 1.0}), "trend": ("popularity", {"window_days": 30.0}),
    }
    return HybridRecommender(components, {"repeat": 1.0, "ease": 0.5, "trend": 0.1})


# Defaults do not fit a six-product shop (ALS's 64 factors; the hybrid has no default blend), so each model
# has its construction here; `test_every_registered_model_is_built_for_the_shop` keeps this table complete.
SHOP_MODELS: dict[str, ShopModel] = {
    "popularity": ShopModel(PopularityRecommender, completes_the_trio=False),
    "repeat": ShopModel(lambda: RepeatRecommender(half_life_days=30.0, log_scale=True), completes_the_trio=False),
    "ease": ShopModel(lambda: EaseRecommender(l2=1.0)),
    "als": ShopModel(lambda: AlsRecommender(factors=2, iterations=10)),
    "rules": ShopModel(lambda: RulesRecommender(min_support=0.1, min_confidence=0.5)),
    "nmf": ShopModel(lambda: NmfRecommender(factors=2, iterations=300)),
    "tifu": ShopModel(lambda: TifuKnnRecommender(group_size=2, neighbours=5)),
    "hybrid": ShopModel(_hybrid),
}


def _registered_models() -> list[str]:
    """Every model name `Recommender.load` knows from `batch.models`, with every module of it imported first, so a
    model whose module is missing from the package's imports is still put through the contract. The Spark
    engine's models (`batch.spark.models`, registered when that is imported) go through the same contract where
    Spark runs: tests/integration/test_spark_engine.py."""
    for module in pkgutil.iter_modules(batch.models.__path__):
        importlib.import_module(f"{batch.models.__name__}.{module.name}")
    return sorted(name for name, cls in Recommender.registry.items() if cls.__module__.startswith("batch.models."))


@pytest.fixture(params=_registered_models())
def model_name(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def shop_model(model_name: str) -> ShopModel:
    if model_name not in SHOP_MODELS:
        pytest.fail(f"registered model {model_name!r} has no entry in SHOP_MODELS")
    return SHOP_MODELS[model_name]


@pytest.fixture
def model(shop_model: ShopModel, shop: Interactions) -> Recommender:
    return shop_model.make().fit(shop)


def test_every_registered_model_is_built_for_the_shop() -> None:
    assert sorted(SHOP_MODELS) == _registered_models()


class TestContract:
    """Run once per registered model."""

    def test_builds_the_registered_class(self, model_name: str, shop_model: ShopModel) -> None:
        assert type(shop_model.make()) is Recommender.registry[model_name]

    def test_fit_returns_the_model(self, shop_model: ShopModel, shop: Interactions) -> None:
        model = shop_model.make()
        assert model.fit(shop) is model

    def test_lists_have_k_distinct_products(self, model: Recommender) -> None:
        lists = model.recommend_ids(np.array(["t", "a0", "b0"]), k=4)
        assert lists.shape == (3, 4)
        assert all(len(set(row)) == 4 for row in lists)

    def test_excluding_seen_drops_what_the_customer_bought(self, model: Recommender) -> None:
        listed = set(model.recommend_ids(np.array(["t"]), k=4, exclude_seen=True)[0])
        assert not listed & {"A1", "A2"}

    def test_known_answer(self, shop_model: ShopModel, model: Recommender) -> None:
        first_new = model.recommend_ids(np.array(["t"]), k=1, exclude_seen=True)[0, 0]
        if shop_model.completes_the_trio:
            assert first_new == "A3"
        else:
            assert first_new in B

    def test_unknown_customer_gets_best_sellers(self, model: Recommender) -> None:
        assert set(model.recommend_ids(np.array(["nobody"]), k=3)[0]) == set(B)

    def test_ranking_equals_the_dense_ranking(self, shop_model: ShopModel, random_shop: Interactions) -> None:
        model = shop_model.make().fit(random_shop)
        assert_same_ranking(model, np.append(np.arange(len(model.customer_ids)), -1), k=12)

    def test_save_and_load_give_the_same_lists(self, model: Recommender, tmp_path: Path) -> None:
        model.save(tmp_path / "m")
        loaded = Recommender.load(tmp_path / "m")
        assert type(loaded) is type(model)
        assert loaded.params() == model.params()
        rows = np.arange(len(model.customer_ids))
        np.testing.assert_allclose(loaded.score(rows), model.score(rows), rtol=1e-6)
        assert (loaded.recommend(rows, 5)[0] == model.recommend(rows, 5)[0]).all()


# Model-specific behaviour. Parametrizing `model_name` narrows `model` to that one model, built as in SHOP_MODELS
# and fitted on the shop.


class TestPopularity:
    def test_recent_window_counts_recent_buyers_only(self, shop: Interactions) -> None:
        recent = PopularityRecommender(window_days=10).fit(shop)
        # the last 10 days of the window hold b40..b49 only
        assert recent.counts[list(shop.product_ids).index("B1")] == 10
        assert recent.counts[list(shop.product_ids).index("A1")] == 0


@pytest.mark.parametrize("model_name", ["repeat"])
class TestRepeat:
    def test_own_most_bought_comes_first(self, model: Recommender) -> None:
        assert list(model.recommend_ids(np.array(["t"]), k=2)[0]) == ["A1", "A2"]


class TestEase:
    def test_covers_the_products_with_most_buyers_and_scores_zero_elsewhere(self, random_shop: Interactions) -> None:
        model = EaseRecommender(l2=1.0, max_items=15).fit(random_shop)
        expected = np.sort(np.argsort(-random_shop.popularity(), kind="stable")[:15])
        assert (model.covered_products() == expected).all()
        outside = np.setdiff1d(np.arange(random_shop.shape[1]), expected)
        scores = model.score(np.arange(random_shop.shape[0]))
        assert (scores[:, outside] == 0).all() and (scores[:, expected] != 0).any()
        assert_same_ranking(model, np.arange(random_shop.shape[0]), k=20)

    def test_restricted_weights_are_full_ease_on_the_covered_columns(self, random_shop: Interactions) -> None:
        model = EaseRecommender(l2=2.0, max_items=15).fit(random_shop)
        x = random_shop.binary[:, model.items].toarray().astype(np.float64)
        precision = np.linalg.inv(x.T @ x + 2.0 * np.eye(15))
        expected = -precision / np.diag(precision)[None, :]
        np.fill_diagonal(expected, 0.0)
        np.testing.assert_allclose(model.item_weights, expected, atol=2e-6)


def test_top_from_many_tied_candidates_is_the_dense_top() -> None:
    """Rows of 120 entries drawn from five scores (ties everywhere, so the k-th best is tied too): the ranking
    that first keeps only each row's contenders gives the dense ranking, ties going to the more popular."""
    rng = np.random.default_rng(3)
    n_rows, n_products, k = 40, 300, 10
    popularity = rng.permutation(n_products).astype(np.float64) + 1.0
    dense = np.zeros((n_rows, n_products))
    for r in range(n_rows):
        dense[r, rng.choice(n_products, size=120, replace=False)] = rng.choice([1.0, 2.0, 3.0, 4.0, 5.0], size=120)
    found = Candidates.sparse(sp.csr_matrix(dense))
    order = np.argsort(-popularity, kind="stable")
    ranked = top_from_candidates(found, k, popularity, order, None)
    assert ranked.exact.all()
    expected = top_k(dense, k, popularity / popularity.max())
    assert (ranked.items == expected).all()
    np.testing.assert_array_equal(ranked.scores, np.take_along_axis(dense, expected, axis=1))


class TestAls:
    @pytest.mark.parametrize("exclude_seen", [False, True])
    def test_candidates_from_a_small_pool_rank_as_the_dense_scores(self, random_shop: Interactions,
                                                                     exclude_seen: bool) -> None:
        """implicit's top-k picks a pool far smaller than the catalogue; its bound (with float32 slack) must
        leave every row it calls exact ranked as the dense float64 scores rank it, and most rows exact."""
        model = AlsRecommender(factors=8, iterations=10).fit(random_shop)
        rows = np.arange(random_shop.shape[0])
        found = model.candidates(rows, 6, exclude_seen)
        assert np.bincount(found.row, minlength=len(rows)).max() <= 6 + SELECTION_MARGIN
        np.testing.assert_allclose(found.score, model.score(rows)[found.row, found.col], rtol=1e-12)
        np.testing.assert_allclose(found.top, model.score(rows).max(axis=1), rtol=1e-12)  # seen ones included
        seen = model.seen[rows] if exclude_seen else None
        ranked = top_from_candidates(found, 5, model.popularity, model.popularity_order(), seen)
        dense_items, dense_scores = model.dense_top(rows, 5, exclude_seen)
        assert ranked.exact.mean() > 0.9
        assert (ranked.items[ranked.exact] == dense_items[ranked.exact]).all()
        np.testing.assert_allclose(ranked.scores[ranked.exact], dense_scores[ranked.exact], rtol=1e-12)


@pytest.mark.parametrize("model_name", ["rules"])
class TestRules:
    def test_fired_score_is_the_rule_confidence(self, model: Recommender) -> None:
        assert isinstance(model, RulesRecommender)
        row = np.searchsorted(model.customer_ids, ["t"])
        a3 = list(model.product_ids).index("A3")
        # t holds A1 and A2, so both fire: A1 -> A3 (40 of the 43 orders with A1) and A2 -> A3 (40 of 41).
        # The stronger one decides; they do not add up.
        assert model.score(row)[0, a3] == pytest.approx(40 / 41, rel=1e-5)


@pytest.mark.parametrize("model_name", ["hybrid"])
class TestHybrid:
    def test_blend_keeps_own_favourite_first(self, model: Recommender) -> None:
        assert model.recommend_ids(np.array(["t"]), k=1)[0, 0] == "A1"


class TestTifuKnn:
    def test_vectors_decay_baskets_within_and_across_groups(self, shop: Interactions) -> None:
        """Customer t: three orders, newest first ot3 (A1), ot2 (A1), ot1 (A1, A2); groups of 2: {ot3, ot2} and
        {ot1}. Group 0: (1 + 0.9) / 2 for A1; group 1 (weight 0.7): 1 / 1 for A1 and A2; both over 2 groups."""
        from batch.models.tifu import customer_vectors

        vectors = customer_vectors(shop, group_size=2, within_decay=0.9, group_decay=0.7)
        row = shop.rows_of(np.array(["t"]))[0]
        a1, a2 = np.searchsorted(shop.product_ids, ["A1", "A2"])
        assert vectors[row, a1] == pytest.approx(((1 + 0.9) / 2 + 0.7) / 2)
        assert vectors[row, a2] == pytest.approx(0.7 / 2)

    @pytest.mark.parametrize("exclude_seen", [False, True])
    def test_candidates_from_a_small_pool_rank_as_the_dense_scores(self, random_shop: Interactions,
                                                                     exclude_seen: bool) -> None:
        """The pool is taken from each row's non-zeros: with 4 of them kept (and any tied with the 4th), every row
        ranks its top 3 as the dense scores do (the rest is bounded strictly below the entries)."""
        model = TifuKnnRecommender(group_size=2, neighbours=5).fit(random_shop)
        rows = np.arange(random_shop.shape[0])
        found = model.candidates(rows, 4, exclude_seen)
        np.testing.assert_allclose(found.score, model.score(rows)[found.row, found.col], rtol=1e-6)
        for row in np.flatnonzero(np.bincount(found.row, minlength=len(rows)) > 4):  # only ties beyond the pool
            kept = np.sort(found.score[found.row == row])[::-1]
            assert (kept[4:] == kept[3]).all()
        assert (found.score > found.bound[found.row]).all()
        seen = model.seen[rows] if exclude_seen else None
        ranked = top_from_candidates(found, 3, model.popularity, model.popularity_order(), seen)
        _, dense_scores = model.dense_top(rows, 3, exclude_seen)
        assert ranked.exact.all()
        np.testing.assert_allclose(ranked.scores, dense_scores, rtol=1e-6)

    def test_alpha_one_is_the_customers_own_vector(self, shop: Interactions) -> None:
        model = TifuKnnRecommender(group_size=2, alpha=1.0).fit(shop)
        assert model.recommend_ids(np.array(["t"]), k=2)[0].tolist() == ["A1", "A2"]


def test_tifu_neighbours_from_embeddings_on_a_large_shop_find_the_same_taste(
    shop: Interactions, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past EXACT_NEIGHBOURS_MAX customers the neighbours come from an SVD embedding, every customer's at once:
    t's are still a-customers, and no customer is its own neighbour."""
    from batch.models import tifu

    monkeypatch.setattr(tifu, "EXACT_NEIGHBOURS_MAX", 10)
    model = TifuKnnRecommender(group_size=2, neighbours=5).fit(shop)
    row = shop.rows_of(np.array(["t"]))
    nearest = model._neighbours(row, 5)
    assert all(str(shop.customer_ids[n]).startswith("a") for n in nearest[0])
    assert model._every is not None and model._every.shape == (shop.shape[0], 5)
    assert not (model._every == np.arange(shop.shape[0])[:, None]).any()
    assert model.recommend_ids(np.array(["t"]), k=1, exclude_seen=True)[0, 0] == "A3"


def _unit_rows(n: int, dims: int, seed: int) -> np.ndarray:
    rows = np.random.default_rng(seed).standard_normal((n, dims)).astype(np.float32)
    unit: np.ndarray = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return unit


def _exact_neighbours(rows: np.ndarray, k: int) -> np.ndarray:
    similar = rows @ rows.T
    np.fill_diagonal(similar, -np.inf)
    nearest: np.ndarray = np.argpartition(-similar, k - 1, axis=1)[:, :k]
    return nearest


def test_clustered_neighbours_probing_every_cluster_are_exact() -> None:
    from batch.models.tifu import clustered_neighbours

    rows = _unit_rows(400, 8, seed=3)
    found = clustered_neighbours(rows, 7, probes=400)
    np.testing.assert_array_equal(np.sort(found, axis=1), np.sort(_exact_neighbours(rows, 7), axis=1))


def test_clustered_neighbours_find_most_of_the_true_ones_in_a_fraction_of_the_comparisons() -> None:
    """Rows drawn around 20 tastes; 20 clusters (sqrt of 400), 4 probed (a fifth of the comparisons): the true
    neighbours share a taste, and a taste's rows sit in one or a few clusters. Recall of the exact 10 at least 0.9."""
    from batch.models.tifu import clustered_neighbours

    generator = np.random.default_rng(5)
    tastes = _unit_rows(20, 16, seed=6)
    rows = tastes[generator.integers(0, 20, 400)] + 0.15 * generator.standard_normal((400, 16)).astype(np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    found, exact = clustered_neighbours(rows, 10, probes=4), _exact_neighbours(rows, 10)
    recall = np.mean([len(np.intersect1d(a, b)) / 10 for a, b in zip(found, exact, strict=True)])
    assert recall >= 0.9
    assert not (found == np.arange(400)[:, None]).any()


def test_clustered_neighbours_widen_the_search_past_small_clusters() -> None:
    """A single probe of a cluster smaller than k + 1 still yields k distinct other rows."""
    from batch.models.tifu import clustered_neighbours

    rows = _unit_rows(60, 4, seed=9)
    found = clustered_neighbours(rows, 20, probes=1)
    assert all(len(set(r)) == 20 for r in found.tolist())
    assert not (found == np.arange(60)[:, None]).any()


def test_tifu_kept_neighbours_score_as_found_afresh(random_shop: Interactions,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Neighbours found once are read back on later passes (up to NEIGHBOUR_MEMO_ROWS customers, 30 here: past that
    they are found each time), and every pass scores as a model that never kept any."""
    from batch.models import tifu

    monkeypatch.setattr(tifu, "NEIGHBOUR_MEMO_ROWS", 30)
    keeping = TifuKnnRecommender(group_size=2, neighbours=5).fit(random_shop)
    rows = np.arange(random_shop.shape[0])
    for asked in (rows[:20], rows[10:50][::-1], np.concatenate([rows[5:15], rows[5:15]]), rows):
        fresh = TifuKnnRecommender(group_size=2, neighbours=5).fit(random_shop)
        np.testing.assert_array_equal(keeping.score(asked), fresh.score(asked))
    assert keeping._slot is not None and keeping._n_kept == 30 and (keeping._slot >= 0).sum() == 30
    kept = np.flatnonzero(keeping._slot >= 0)
    np.testing.assert_array_equal(keeping._kept[keeping._slot[kept]], keeping._nearest(kept, 5))


def test_sorted_lookup_reads_what_indexing_reads() -> None:
    """Unsorted indices and a duplicated cell (summed), asked in any order, asked twice, and cells never set."""
    matrix = sp.csr_matrix((np.array([3.0, 1.0, 2.0, 5.0, 0.5]), np.array([4, 1, 4, 0, 2]), np.array([0, 3, 3, 5])),
                           shape=(3, 6))
    expected = matrix.toarray()  # (0, 4) holds 3 + 2
    rows, cols = np.array([2, 0, 0, 1, 2, 0, 2]), np.array([2, 4, 1, 3, 0, 4, 5])
    np.testing.assert_array_equal(sorted_lookup(matrix)(rows, cols), expected[rows, cols])
    empty = sorted_lookup(sp.csr_matrix((2, 3)))(np.array([0, 1]), np.array([2, 0]))
    np.testing.assert_array_equal(empty, [0.0, 0.0])

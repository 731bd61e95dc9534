"""Every model passes the same behavioural tests on a shop with a known answer (the benfred/implicit pattern).

The shop: 40 customers buy the A trio (A1, A2, A3) together, 50 buy the B trio, so B sells more. Customer "t"
has bought A1 (three times) and A2, never A3. A collaborative model must put A3 first among new items;
popularity must put a B product first; the customer's own list must start with A1."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest

from batch.interactions import Interactions
from batch.models import (
    EaseRecommender,
    HybridRecommender,
    NmfRecommender,
    PopularityRecommender,
    Recommender,
    RepeatRecommender,
    RulesRecommender,
)

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


class RecommenderContract:
    """Inherited by one test class per model."""

    completes_the_trio: ClassVar[bool] = True  # A3 first among t's new items

    def make(self) -> Recommender:
        raise NotImplementedError

    @pytest.fixture
    def model(self, shop: Interactions) -> Recommender:
        return self.make().fit(shop)

    def test_fit_returns_the_model(self, shop: Interactions) -> None:
        model = self.make()
        assert model.fit(shop) is model

    def test_lists_have_k_distinct_products(self, model: Recommender) -> None:
        lists = model.recommend_ids(np.array(["t", "a0", "b0"]), k=4)
        assert lists.shape == (3, 4)
        assert all(len(set(row)) == 4 for row in lists)

    def test_excluding_seen_drops_what_the_customer_bought(self, model: Recommender) -> None:
        listed = set(model.recommend_ids(np.array(["t"]), k=4, exclude_seen=True)[0])
        assert not listed & {"A1", "A2"}

    def test_known_answer(self, model: Recommender) -> None:
        first_new = model.recommend_ids(np.array(["t"]), k=1, exclude_seen=True)[0, 0]
        if self.completes_the_trio:
            assert first_new == "A3"
        else:
            assert first_new in B

    def test_unknown_customer_gets_best_sellers(self, model: Recommender) -> None:
        assert set(model.recommend_ids(np.array(["nobody"]), k=3)[0]) == set(B)

    def test_save_and_load_give_the_same_lists(self, model: Recommender, tmp_path: Path) -> None:
        model.save(tmp_path / "m")
        loaded = Recommender.load(tmp_path / "m")
        assert type(loaded) is type(model)
        assert loaded.params() == model.params()
        rows = np.arange(len(model.customer_ids))
        np.testing.assert_allclose(loaded.score(rows), model.score(rows), rtol=1e-6)
        assert (loaded.recommend(rows, 5)[0] == model.recommend(rows, 5)[0]).all()


class TestPopularity(RecommenderContract):
    completes_the_trio = False

    def make(self) -> Recommender:
        return PopularityRecommender()

    def test_recent_window_counts_recent_buyers_only(self, shop: Interactions) -> None:
        recent = PopularityRecommender(window_days=10).fit(shop)
        # the last 10 days of the window hold b40..b49 only
        assert recent.counts[list(shop.product_ids).index("B1")] == 10
        assert recent.counts[list(shop.product_ids).index("A1")] == 0


class TestRepeat(RecommenderContract):
    completes_the_trio = False

    def make(self) -> Recommender:
        return RepeatRecommender(half_life_days=30.0, log_scale=True)

    def test_own_most_bought_comes_first(self, model: Recommender) -> None:
        assert list(model.recommend_ids(np.array(["t"]), k=2)[0]) == ["A1", "A2"]


class TestNmf(RecommenderContract):
    def make(self) -> Recommender:
        return NmfRecommender(n_components=2, weighting="binary")


class TestEase(RecommenderContract):
    def make(self) -> Recommender:
        return EaseRecommender(l2=1.0)


class TestRules(RecommenderContract):
    def make(self) -> Recommender:
        return RulesRecommender(min_support=0.1, min_confidence=0.5)

    def test_fired_score_is_the_rule_confidence(self, model: Recommender) -> None:
        assert isinstance(model, RulesRecommender)
        row = np.searchsorted(model.customer_ids, ["t"])
        a3 = list(model.product_ids).index("A3")
        # t holds A1 and A2, so both fire: A1 -> A3 (40 of the 43 orders with A1) and A2 -> A3 (40 of 41).
        # The stronger one decides; they do not add up.
        assert model.score(row)[0, a3] == pytest.approx(40 / 41, rel=1e-5)


class TestHybrid(RecommenderContract):
    def make(self) -> Recommender:
        components: dict[str, tuple[str, dict[str, Any]]] = {
            "repeat": ("repeat", {}), "ease": ("ease", {"l2": 1.0}), "trend": ("popularity", {"window_days": 30.0}),
        }
        return HybridRecommender(components, {"repeat": 1.0, "ease": 0.5, "trend": 0.1})

    def test_blend_keeps_own_favourite_first(self, model: Recommender) -> None:
        assert model.recommend_ids(np.array(["t"]), k=1)[0, 0] == "A1"

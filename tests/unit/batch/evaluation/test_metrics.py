from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from batch.evaluation.metrics import (
    batch_metrics,
    coverage,
    hit_matrix,
    hit_rate_at,
    map_at,
    mean_metrics,
    ndcg_at,
    precision_at,
    recall_at,
)

RANKED = ["a", "b", "c", "d", "e"]


def test_five_recommended_two_bought_is_precision_0_4() -> None:
    assert precision_at(RANKED, {"b", "d"}, 5) == pytest.approx(0.4)


def test_recall_counts_relevant_items_outside_the_list() -> None:
    assert recall_at(RANKED, {"b", "d", "x", "y"}, 5) == pytest.approx(0.5)


def test_ndcg_hand_computed() -> None:
    # hits at ranks 2 and 4: (1/log2(3) + 1/log2(5)) / (1/log2(2) + 1/log2(3))
    expected = (1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3))
    assert ndcg_at(RANKED, {"b", "d"}, 5) == pytest.approx(expected)
    assert ndcg_at(RANKED, {"a", "b"}, 5) == pytest.approx(1.0)


def test_map_hand_computed() -> None:
    # precision at the hits: 1/2 (rank 2) and 2/4 (rank 4); divided by min(k, |relevant|) = 2
    assert map_at(RANKED, {"b", "d"}, 5) == pytest.approx((0.5 + 0.5) / 2)
    # three relevant, one found at rank 1, k = 2: 1 / min(2, 3)
    assert map_at(RANKED, {"a", "x", "y"}, 2) == pytest.approx(0.5)


def test_hit_rate_and_empty_cases() -> None:
    assert hit_rate_at(RANKED, {"e"}, 5) == 1.0
    assert hit_rate_at(RANKED, {"e"}, 4) == 0.0
    assert recall_at(RANKED, set(), 5) == 0.0
    assert ndcg_at(RANKED, set(), 5) == 0.0
    assert map_at(RANKED, {"z"}, 5) == 0.0


def test_short_list_is_not_rewarded() -> None:
    assert precision_at(["a"], {"a"}, 5) == pytest.approx(0.2)


def test_coverage_is_the_share_of_the_catalogue_recommended() -> None:
    assert coverage([["a", "b"], ["b", "c"]], catalog_size=10, k=2) == pytest.approx(0.3)
    assert coverage([["a", "b"], ["b", "c"]], catalog_size=10, k=1) == pytest.approx(0.2)


def test_batch_metrics_equal_the_per_list_definitions() -> None:
    rng = np.random.default_rng(7)
    n_users, n_items, k = 60, 30, 10
    top = np.stack([rng.permutation(n_items)[:20] for _ in range(n_users)])
    relevant_dense = rng.random((n_users, n_items)) < 0.15
    relevant_dense[0] = False  # a customer whose purchases all fell outside the catalogue
    extra = rng.integers(0, 3, n_users)  # relevant items the catalogue lacks still count in recall/ideal DCG
    relevant = sp.csr_matrix(relevant_dense.astype(np.float32))
    n_relevant = relevant_dense.sum(axis=1) + extra

    fast = batch_metrics(hit_matrix(top, relevant), n_relevant, k)

    lists = [list(row) for row in top]
    sets = [set(np.flatnonzero(r)) | {f"missing{i}" for i in range(e)}
            for r, e in zip(relevant_dense, extra, strict=True)]
    slow = mean_metrics(lists, sets, [k], n_items)
    for name in ("precision", "recall", "ndcg", "map", "hit_rate"):
        assert fast[f"{name}@{k}"] == pytest.approx(slow[f"{name}@{k}"]), name

from __future__ import annotations

import pandas as pd
import pytest

from batch.evaluation.split import TemporalSplit, evaluate
from batch.interactions import Interactions
from batch.models import RepeatRecommender
from common.data.errors import DataError

SPLIT = pd.Timestamp("2024-02-01")


def _lines() -> pd.DataFrame:
    rows = [
        ("c1", "o1", "p1", "2024-01-05", 10.0), ("c1", "o2", "p1", "2024-01-20", 10.0),
        ("c1", "o2", "p2", "2024-01-20", 5.0),
        ("c1", "o3", "p1", "2024-02-03", 10.0), ("c1", "o3", "p3", "2024-02-03", 4.0),
        ("c2", "o4", "p2", "2024-01-10", 5.0), ("c2", "o5", "p2", "2024-02-10", 5.0),
        ("c3", "o6", "p3", "2024-01-11", 4.0),  # nothing after the split: not evaluated
        ("c4", "o7", "p1", "2024-02-11", 10.0),  # nothing before: not evaluated
        ("c2", "o8", "p9", "2024-02-12", 3.0),  # a product the training catalogue lacks
    ]
    frame = pd.DataFrame(rows, columns=["customer_id", "order_id", "product_id", "event_time", "amount"])
    return frame.assign(event_time=pd.to_datetime(frame["event_time"]))


def test_interactions_count_orders_amounts_and_last_day() -> None:
    lines = _lines()
    data = Interactions.from_lines(lines[lines["event_time"] < SPLIT])
    c1, p1 = list(data.customer_ids).index("c1"), list(data.product_ids).index("p1")
    assert data.orders[c1, p1] == 2
    assert data.amount[c1, p1] == 20.0
    assert list(data.popularity()) == [1, 2, 1]  # distinct buyers of p1, p2, p3


def test_split_evaluates_customers_seen_on_both_sides() -> None:
    split = TemporalSplit.at(_lines(), SPLIT)
    all_items = split.holdouts["all_items"]
    assert list(split.train.customer_ids[all_items.rows]) == ["c1", "c2"]
    assert list(all_items.n_relevant) == [2, 2]  # c1: p1, p3; c2: p2, p9 (p9 unknown to the catalogue)
    new = split.holdouts["new_items"]
    assert list(split.train.customer_ids[new.rows]) == ["c1", "c2"]
    assert list(new.n_relevant) == [1, 1]  # c1: p3; c2: p9


def test_repeat_model_metrics_by_hand() -> None:
    split = TemporalSplit.at(_lines(), SPLIT)
    model = RepeatRecommender().fit(split.train)
    metrics, top = evaluate(model, split.holdouts["all_items"], ks=(1, 2))
    # c1's list: p1 (2 orders), p2; c2's: p2 first. Both first picks are hits.
    assert metrics["precision@1"] == pytest.approx(1.0)
    # c1: hits [p1] of {p1, p3} in top 2 -> 1/2; c2: [p2] of {p2, p9} -> 1/2
    assert metrics["precision@2"] == pytest.approx(0.5)
    assert metrics["recall@2"] == pytest.approx(0.5)
    assert top.shape == (2, 2)


def test_a_split_with_an_empty_side_is_an_error() -> None:
    with pytest.raises(DataError, match="empty side"):
        TemporalSplit.at(_lines(), pd.Timestamp("2030-01-01"))

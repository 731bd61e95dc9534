"""Scoring live RFM with published cut points gives the batch's segment."""

import pandas as pd

from batch.segments import cut_points, rfm_table, snapshot_of
from common.segments import OTHER, SEGMENT_RULES, CutPoints, Steps, live_segment, segment_for


def test_steps_score_values_up_to_and_including_each_edge() -> None:
    steps = Steps(edges=[1.0, 1.0, 3.0], scores=[1, 2, 3, 4])
    assert [steps.score(v) for v in (0.5, 1.0, 2.0, 3.0, 3.5)] == [1, 1, 3, 3, 4]


def test_segment_for_follows_the_rules_in_order() -> None:
    assert segment_for(5, 5, 5) == "champions"
    assert segment_for(5, 4, 1) == "loyal"
    assert segment_for(5, 1, 1) == "new"
    assert segment_for(3, 2, 3) == OTHER.name
    assert all(rule.action for rule in (*SEGMENT_RULES, OTHER))


def _history(n: int = 400) -> pd.DataFrame:
    rows = []
    for i in range(n):
        for j in range(1 + (i * 7) % 9):
            rows.append((f"c{i}", f"o{i}-{j}", pd.Timestamp("2024-01-01") + pd.Timedelta(days=(i * 13 + j * 29) % 360),
                         float(5 + (i * 31) % 97)))
    return pd.DataFrame(rows, columns=["customer_id", "order_id", "event_time", "amount"])


def test_live_scoring_with_the_cut_points_reproduces_every_batch_segment_off_the_ties() -> None:
    lines = _history()
    table = rfm_table(lines)
    cuts = CutPoints.from_dict(cut_points(table, snapshot_of(lines)).to_dict())  # as published and read back
    # Customers sharing a value the batch split across two scores (by rank) cannot all match one live score.
    straddling = {dim: {v for v, scores in table.groupby(value)[dim].nunique().items() if scores > 1}
                  for dim, value in (("r", "recency_days"), ("f", "frequency"), ("m", "monetary"))}
    clean = table[~table["recency_days"].isin(straddling["r"]) & ~table["frequency"].isin(straddling["f"])
                  & ~table["monetary"].isin(straddling["m"])]
    assert len(clean) > len(table) / 2
    for row in clean.to_dict(orient="records"):
        live = live_segment(cuts, float(row["recency_days"]), float(row["frequency"]), float(row["monetary"]))
        assert (live["r"], live["f"], live["m"], live["segment"]) == (row["r"], row["f"], row["m"],
                                                                      row["segment"]), row

from __future__ import annotations

import pandas as pd

from batch.segments import SEGMENT_RULES, case_study_segment, quintile, rfm_table, segment_of, segment_summary


def _lines(rows: list[tuple[str, str, str, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["customer_id", "order_id", "event_time", "amount"]).assign(
        event_time=lambda f: pd.to_datetime(f["event_time"])
    )


def test_rfm_values_from_hand_made_history() -> None:
    lines = _lines([
        ("a", "1", "2024-01-01", 10.0), ("a", "1", "2024-01-01", 5.0), ("a", "2", "2024-01-09", 20.0),
        ("b", "3", "2024-01-05", 7.5),
    ])
    table = rfm_table(lines).set_index("customer_id")
    # snapshot = the day after the last event (2024-01-10), as in the case study
    assert table.loc["a", "recency_days"] == 1.0
    assert table.loc["a", "frequency"] == 2
    assert table.loc["a", "monetary"] == 35.0
    assert table.loc["b", "recency_days"] == 5.0
    assert table.loc["b", "frequency"] == 1


def test_quintiles_split_evenly_and_keep_order() -> None:
    values = pd.Series(range(100))
    scores = quintile(values)
    assert scores.value_counts().sort_index().tolist() == [20] * 5
    assert scores.iloc[0] == 1 and scores.iloc[-1] == 5


def test_named_segments_follow_the_rules_in_order() -> None:
    r = pd.Series([5, 5, 5, 4, 1, 1, 3])
    f = pd.Series([5, 4, 1, 2, 5, 1, 2])
    m = pd.Series([5, 1, 1, 3, 5, 1, 3])
    assert segment_of(r, f, m).tolist() == [
        "champions", "loyal", "new", "promising", "at_risk", "hibernating", "needs_attention",
    ]


def test_case_study_segments() -> None:
    r = pd.Series([5, 4, 2, 3])
    f = pd.Series([1, 4, 5, 5])
    assert case_study_segment(r, f, f).tolist() == ["Oro", "Plata", "Bronce", "Otro"]


def test_summary_sizes_add_up_to_all_customers() -> None:
    rows = [(f"c{i}", f"o{i}-{j}", f"2024-0{1 + i % 9}-1{j}", float(i * 3 + j)) for i in range(50)
            for j in range(1 + i % 4)]
    table = rfm_table(_lines(rows))
    summary = segment_summary(table)
    assert summary["customers"].sum() == 50
    assert set(summary["segment"]) <= {rule.name for rule in SEGMENT_RULES} | {"needs_attention"}
    assert abs(summary["share"].sum() - 1) < 0.02

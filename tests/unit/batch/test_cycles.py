from __future__ import annotations

import json

import pandas as pd

from batch.cycles import buy_cycles

DAY0 = 19_723  # 2024-01-01 in days since the epoch


def _lines(rows: list[tuple[str, str, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["customer_id", "product_id", "event_time"]).astype(
        {"event_time": "datetime64[ns]"})


def test_products_bought_on_two_days_or_more_with_their_days() -> None:
    lines = _lines([("a", "x", "2024-01-01 08:00"), ("a", "x", "2024-01-01 18:00"),  # one day, twice
                    ("a", "x", "2024-01-11 09:00"), ("a", "y", "2024-01-05 00:00"), ("a", "y", "2024-02-05 00:00"),
                    ("a", "z", "2024-01-03 00:00"),  # bought once: no cycle
                    ("b", "x", "2024-01-01 00:00")])
    cycles = {customer: json.loads(text) for customer, text in buy_cycles(lines).items()}
    # both bought on two days; y was bought last, so it comes first
    assert cycles == {"a": [["y", [DAY0 + 4, DAY0 + 35]], ["x", [DAY0, DAY0 + 10]]]}


def test_the_most_bought_products_and_their_latest_days_are_kept() -> None:
    rows = [("a", "often", f"2024-01-{d:02d}") for d in range(1, 11)]
    rows += [("a", "twice", "2024-03-01"), ("a", "twice", "2024-03-05")]
    rows += [("a", "thrice", f"2024-02-0{d}") for d in (1, 3, 5)]
    cycles = json.loads(buy_cycles(_lines(rows), products=2, days=3)["a"])
    assert [product for product, _ in cycles] == ["often", "thrice"]
    assert cycles[0][1] == [DAY0 + 7, DAY0 + 8, DAY0 + 9]

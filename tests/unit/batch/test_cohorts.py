"""Cohort best-sellers and the offline cold-start check on shops with a known answer."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import pytest

from batch.cohorts import cohort_lists, evaluate_cold_start, global_best_sellers
from batch.evaluation.metrics import ndcg_at


def _customers(rows: Sequence[tuple[str, str | None, int | None]]) -> pd.DataFrame:
    return pd.DataFrame({"customer_id": [r[0] for r in rows], "region": [r[1] for r in rows],
                         "city": None, "gender": None, "birth_date": pd.NaT,
                         "age": pd.array([r[2] for r in rows], dtype="Int64")})


def _lines(rows: list[tuple[str, str, str, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["customer_id", "order_id", "product_id", "event_time"]).assign(
        event_time=lambda f: pd.to_datetime(f["event_time"]))


def test_cohort_lists_count_buyers_and_leave_out_small_cohorts() -> None:
    customers = _customers([(f"n{i}", "North", 30) for i in range(4)] + [(f"s{i}", "South", 70) for i in range(2)])
    lines = _lines([(f"n{i}", f"o{i}", "tea", "2024-01-02") for i in range(4)]
                   + [("n0", "o9", "jam", "2024-01-03"), ("n0", "o10", "jam", "2024-01-04")]
                   + [(f"s{i}", f"q{i}", "salt", "2024-01-05") for i in range(2)])
    lists = cohort_lists(lines, customers, None, min_customers=3)
    # North customers are all 25-34: the narrow cohort and the region and the age band have 4 buyers each.
    assert lists == {key: [{"product_id": "tea", "buyers": 4}, {"product_id": "jam", "buyers": 1}]
                     for key in ("region=North|age=25-34", "region=North", "age=25-34")}
    assert global_best_sellers(lines, None)[:2] == [{"product_id": "tea", "buyers": 4},
                                                    {"product_id": "salt", "buyers": 2}]
    recent = cohort_lists(lines, customers, 1.5, min_customers=1)  # only the last 1.5 days: n0's jam, the salt
    assert recent == {key: [{"product_id": "salt", "buyers": 2}] for key in ("region=South|age=65+", "region=South",
                                                                            "age=65+")} | {
        key: [{"product_id": "jam", "buyers": 1}] for key in ("region=North|age=25-34", "region=North", "age=25-34")}


def _regional_shop(signal: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    """60 customers per region buy before the split (half of them bread as well); 30 new ones per region buy after
    it. With a signal each region buys its own product; without one everybody buys the same."""
    rows, people = [], []
    for region, product in (("North", "tea"), ("South", "mate")):
        for i in range(90):
            cid = f"{region}{i}"
            people.append((cid, region, 40))
            bought = product if signal else "tea"
            day = "2024-01-10" if i < 60 else "2024-02-10"
            rows.append((cid, f"{cid}-1", bought, day))
            if i < 30:
                rows.append((cid, f"{cid}-1", "bread", day))
    return _lines(rows), _customers(people)


def test_cold_start_check_serves_cohorts_only_when_they_win() -> None:
    lines, customers = _regional_shop(signal=True)
    result = evaluate_cold_start(lines, customers, pd.Timestamp("2024-02-01"), None)
    new = result["new_customers"]
    assert new["customers"] == 60
    # Every new customer's first order holds their region's product: the region's list ranks it first (NDCG 1).
    # Globally bread, mate and tea have 60 buyers each (ties by id): South finds mate second, North tea third.
    assert new["cohort, all time"]["ndcg@10"] == pytest.approx(1.0)
    expected = (ndcg_at(["bread", "mate"], {"mate"}, 10) + ndcg_at(["bread", "mate", "tea"], {"tea"}, 10)) / 2
    assert new["global, all time"]["ndcg@10"] == pytest.approx(expected, abs=1e-4)
    assert result["decision"]["serve_cohorts"] is True and result["decision"]["ci_low"] > 0

    flat_lines, flat_customers = _regional_shop(signal=False)
    flat = evaluate_cold_start(flat_lines, flat_customers, pd.Timestamp("2024-02-01"), None)
    assert flat["decision"]["difference"] == 0 and flat["decision"]["serve_cohorts"] is False


def test_cold_start_check_scores_a_seeded_sample_when_asked() -> None:
    lines, customers = _regional_shop(signal=True)
    result = evaluate_cold_start(lines, customers, pd.Timestamp("2024-02-01"), None, max_customers=40)
    assert result["all_customers"]["customers"] == result["new_customers"]["customers"] == 40
    # Everyone buying after the split is new here; each population is sampled on its own.
    assert result["all_customers"]["eligible"] == result["new_customers"]["eligible"] == 60
    again = evaluate_cold_start(lines, customers, pd.Timestamp("2024-02-01"), None, max_customers=40)
    assert again == result
    assert result["new_customers"]["cohort, all time"]["ndcg@10"] == pytest.approx(1.0)

from datetime import UTC, datetime
from typing import Any

from api.model_cache import ModelView
from api.services.cohorts import rank_for_profile
from api.services.customers import live_segment_of, profile_of
from common.segments import CutPoints, Steps

SHOP = [{"product_id": p, "buyers": 50 - i} for i, p in enumerate(["g1", "g2", "g3", "g4"])]


def _view(cohorts: dict[str, list[dict[str, Any]]]) -> ModelView:
    return ModelView(version="v1", data_end_ts=datetime(2023, 11, 16, tzinfo=UTC).timestamp(), trend_days=14,
                     popular=SHOP, products={}, cohorts=cohorts)


def test_a_profiled_customer_gets_their_cohorts_best_sellers_with_the_cohort_as_reason() -> None:
    view = _view({"region=Antioquia|age=25-34": [{"product_id": "c1", "buyers": 40},
                                                 {"product_id": "g2", "buyers": 30}],
                  "age=65+": [{"product_id": "old", "buyers": 9}]})
    ranked = rank_for_profile({"region": "Antioquia", "birth_date": "1990-06-01"}, view, 4)  # 33 at the data's end
    assert ranked is not None
    assert [(r.product_id, r.source, r.reason) for r in ranked] == [
        ("c1", "cohort", "popular with customers in Antioquia aged 25-34"),
        ("g2", "cohort", "popular with customers in Antioquia aged 25-34"),
        ("g1", "popular", "best-seller in the last 14 days"), ("g3", "popular", "best-seller in the last 14 days")]
    assert [r.score for r in ranked] == sorted((r.score for r in ranked), reverse=True)


def test_a_small_cohort_falls_back_to_a_broader_one_and_no_cohort_means_none() -> None:
    view = _view({"region=Antioquia": [{"product_id": "c1", "buyers": 40}]})
    ranked = rank_for_profile({"region": "Antioquia", "birth_date": "1940-01-01"}, view, 2)
    assert ranked is not None and ranked[0].reason == "popular with customers in Antioquia"
    assert rank_for_profile({"region": "Cauca"}, view, 2) is None  # global best-sellers as before
    assert rank_for_profile({}, view, 2) is None


def test_live_segment_uses_the_published_cut_points() -> None:
    cuts = CutPoints(as_of="2023-11-17", minus_recency_days=Steps([-200.0, -100.0, -30.0, -7.0], [1, 2, 3, 4, 5]),
                     frequency=Steps([1.0, 2.0, 4.0, 8.0], [1, 2, 3, 4, 5]),
                     monetary=Steps([10.0, 50.0, 100.0, 500.0], [1, 2, 3, 4, 5]))
    day = 86400
    fields = {"first_ts": str(0), "last_ts": str(100 * day), "orders": "9", "monetary_cents": "60000"}
    live = live_segment_of(fields, 103 * day, cuts)  # 3 days ago, 9 orders, 600.00 spent
    assert live is not None and live.recency_days == 3.0
    assert live.segment is not None
    assert (live.segment["r"], live.segment["f"], live.segment["m"], live.segment["segment"]) == (5, 5, 5,
                                                                                                 "champions")
    gone = live_segment_of(fields, 400 * day, cuts)
    assert gone is not None and gone.segment is not None and gone.segment["segment"] == "at_risk"
    assert live_segment_of({}, 0, cuts) is None
    unscored = live_segment_of(fields, 103 * day, None)
    assert unscored is not None and unscored.segment is None
    assert profile_of({"region": "Antioquia", "birth_date": "2000-03-01"}, 103 * day) == {
        "region": "Antioquia", "city": None, "gender": None, "birth_date": "2000-03-01", "age": None,
        "age_band": None}  # an implausible age (here negative) is no age, as the loader has it

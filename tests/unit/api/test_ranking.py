from __future__ import annotations

from api.ranking import best_sellers, treatment
from common.toplist import TopList, decode, encode

MODEL = TopList(["p1", "p2", "p3"], [1.0, 0.8, 0.5], ["repeat", "ease", "trend"])
DAY = 86_400.0


def test_what_was_bought_after_the_model_is_dropped() -> None:
    ranked = treatment(MODEL, [("p1", 10 * DAY)], {}, model_end_ts=5 * DAY, basket_s=DAY, k=3, trend_days=14,
                       names={})
    assert [r.product_id for r in ranked] == ["p2", "p3"]
    assert ranked[0].reason == "customers who buy like you bought it"


def test_purchases_the_model_already_saw_stay() -> None:
    ranked = treatment(MODEL, [("p1", 4 * DAY)], {}, model_end_ts=5 * DAY, basket_s=DAY, k=2, trend_days=14,
                       names={})
    assert [r.product_id for r in ranked] == ["p1", "p2"]
    assert ranked[0].reason == "you buy it regularly"


def test_rules_fired_by_todays_basket_boost_and_explain() -> None:
    rules = {"b": [{"product_id": "p3", "confidence": 0.6}, {"product_id": "x", "confidence": 0.4}],
             "old": [{"product_id": "y", "confidence": 0.9}]}
    recent = [("b", 10 * DAY), ("old", 7 * DAY)]  # "old" is three days before the latest purchase: not today
    ranked = treatment(MODEL, recent, rules, model_end_ts=20 * DAY, basket_s=DAY, k=5, trend_days=14,
                       names={"b": {"name": "Bread"}})
    scores = {r.product_id: r for r in ranked}
    assert scores["p3"].score == 0.5 + 0.6 and scores["p3"].reason == "often bought with Bread you just bought"
    assert scores["x"].score == 0.4 and scores["x"].source == "rules"
    assert "y" not in scores
    assert [r.product_id for r in ranked][:2] == ["p3", "p1"]


def test_best_sellers_scaled_and_excluding() -> None:
    popular = [{"product_id": "a", "buyers": 10}, {"product_id": "b", "buyers": 5}, {"product_id": "c", "buyers": 1}]
    ranked = best_sellers(popular, 2, 14, exclude=frozenset({"a"}))
    assert [(r.product_id, r.score) for r in ranked] == [("b", 1.0), ("c", 0.2)]
    assert ranked[0].reason == "best-seller in the last 14 days"


def test_top_lists_round_trip_in_their_compact_form() -> None:
    stored = encode([("85123A", 1.2345678, "repeat"), ("22423", 0.5, "rules"), ("p-9", 0.0001, "trend")])
    assert stored == "85123A,22423,p-9|1.2346,0.5,0.0001|rut"
    assert decode(stored.encode()) == TopList(["85123A", "22423", "p-9"], [1.2346, 0.5, 0.0001],
                                              ["repeat", "rules", "trend"])
    assert decode(encode([])) == TopList([], [], [])


def test_the_spark_engines_als_source_round_trips_and_is_explained() -> None:
    """The Spark engine publishes "als"; like EASE and NMF it is explained as a collaborative pick."""
    stored = decode(encode([("p1", 1.0, "als"), ("p2", 0.5, "repeat")]))
    assert stored.sources == ["als", "repeat"]
    ranked = treatment(stored, [], {}, model_end_ts=0.0, basket_s=DAY, k=2, trend_days=14, names={})
    assert ranked[0].reason == "customers who buy like you bought it"

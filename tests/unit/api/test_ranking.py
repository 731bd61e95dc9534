from __future__ import annotations

import heapq
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from api.ranking import RULE_BOOST, RuleBoosts, best_sellers, reason_for, rule_boosts, treatment
from common.i18n import translations
from common.toplist import TopList, decode, decode_lazily, encode

MODEL = TopList(["p1", "p2", "p3"], [1.0, 0.8, 0.5], ["repeat", "ease", "trend"])
DAY = 86_400.0


def _boosts(rules: dict[str, list[dict[str, Any]]]) -> dict[str, RuleBoosts]:
    """Published rule rows as the API caches them."""
    return {antecedent: rule_boosts(rows) for antecedent, rows in rules.items()}


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
    rules: dict[str, list[dict[str, Any]]] = {
        "b": [{"product_id": "p3", "confidence": 0.6}, {"product_id": "x", "confidence": 0.4}],
        "old": [{"product_id": "y", "confidence": 0.9}]}
    recent = [("b", 10 * DAY), ("old", 7 * DAY)]  # "old" is three days before the latest purchase: not today
    ranked = treatment(MODEL, recent, _boosts(rules), model_end_ts=20 * DAY, basket_s=DAY, k=5, trend_days=14,
                       names={"b": {"name": "Bread"}})
    scores = {r.product_id: r for r in ranked}
    assert scores["p3"].score == 0.5 + 0.6 and scores["p3"].reason == "often bought with Bread you just bought"
    assert scores["x"].score == 0.4 and scores["x"].source == "rules"
    assert "y" not in scores
    assert [r.product_id for r in ranked][:2] == ["p3", "p1"]
    spanish = treatment(MODEL, recent, _boosts(rules), model_end_ts=20 * DAY, basket_s=DAY, k=5, trend_days=14,
                        names={"b": {"name": "Pan"}}, gettext=translations("es").gettext)
    assert {r.product_id: r.reason for r in spanish}["p3"] == "se compra a menudo con Pan, que acaba de comprar"


def test_best_sellers_scaled_and_excluding() -> None:
    popular = [{"product_id": "a", "buyers": 10}, {"product_id": "b", "buyers": 5}, {"product_id": "c", "buyers": 1}]
    ranked = best_sellers(popular, 2, 14, exclude=frozenset({"a"}))
    assert [(r.product_id, r.score) for r in ranked] == [("b", 1.0), ("c", 0.2)]
    assert ranked[0].reason == "best-seller in the last 14 days"
    spanish = best_sellers(popular, 1, 14, gettext=translations("es").gettext)
    assert spanish[0].reason == "de lo más vendido en los últimos 14 días"


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


def test_a_lazily_decoded_top_list_reads_the_same() -> None:
    stored = encode([("85123A", 1.2345678, "repeat"), ("22423", 0.5, "rules"), ("p-9", 0.0001, "trend")])
    full, lazy = decode(stored), decode_lazily(stored.encode())
    assert lazy.products == full.products
    assert [(lazy.score(i), lazy.source(i)) for i in range(3)] == [(full.score(i), full.source(i)) for i in range(3)]
    assert decode_lazily(encode([])).products == []


def _reference_treatment(model_list: TopList, recent: list[tuple[str, float]], rules: dict[str, list[dict[str, Any]]],
                         model_end_ts: float, basket_s: float, k: int) -> list[tuple[str, float, str, str | None]]:
    """The ranking as first written: every listed and fired product scored, then the k largest (stable)."""
    bought_since = {p for p, ts in recent if ts > model_end_ts}
    latest = max((ts for _, ts in recent), default=0.0)
    basket = [p for p, ts in recent if ts >= latest - basket_s]
    scored: dict[str, list[Any]] = {p: [s, src, None] for p, s, src in
                                    zip(model_list.products, model_list.scores, model_list.sources, strict=True)
                                    if p not in bought_since}
    for antecedent in basket:
        for rule in rules.get(antecedent, ()):
            product = rule["product_id"]
            if product in set(basket) or product in bought_since:
                continue
            boost = RULE_BOOST * float(rule["confidence"])
            entry = scored.get(product)
            if entry is None:
                scored[product] = [boost, "rules", antecedent]
            elif boost >= entry[0]:
                scored[product] = [entry[0] + boost, "rules", antecedent]
            else:
                entry[0] += boost
    top = heapq.nlargest(k, scored.items(), key=lambda kv: float(kv[1][0]))
    return [(p, round(s, 5), src, ant) for p, (s, src, ant) in top]


PRODUCTS = [f"p{i}" for i in range(12)]


@given(
    scores=st.lists(st.sampled_from([0.1, 0.3, 0.3, 0.5, 0.9, 1.2]), min_size=0, max_size=12),
    recent=st.lists(st.tuples(st.sampled_from(PRODUCTS), st.sampled_from([1.0, 4.0, 9.0, 9.5, 10.0])), max_size=6,
                    unique_by=lambda r: r[0]),
    rules=st.dictionaries(st.sampled_from(PRODUCTS), st.lists(
        st.builds(lambda p, c: {"product_id": p, "confidence": c}, st.sampled_from(PRODUCTS),
                  st.sampled_from([0.1, 0.3, 0.5, 1.2])), max_size=4), max_size=6),
    k=st.integers(1, 14),
)
@settings(max_examples=500, database=None)
def test_ranking_equals_scoring_every_candidate(scores: list[float], recent: list[tuple[str, float]],
                                                 rules: dict[str, list[dict[str, Any]]], k: int) -> None:
    """Only the first k untouched listed products and the fired ones are scored: the result must be what
    scoring every product gives, ties and reasons included."""
    ordered = sorted(scores, reverse=True)  # stored best first
    model_list = TopList(PRODUCTS[:len(ordered)], ordered, ["repeat", "ease", "trend"] * 4)
    model_list = TopList(model_list.products, model_list.scores, model_list.sources[:len(ordered)])
    ranked = treatment(model_list, recent, _boosts(rules), model_end_ts=5.0, basket_s=1.0, k=k, trend_days=14, names={})
    expected = _reference_treatment(model_list, recent, rules, model_end_ts=5.0, basket_s=1.0, k=k)
    assert [(r.product_id, r.score, r.source) for r in ranked] == [(p, s, src) for p, s, src, _ in expected]
    assert [r.reason for r in ranked] == [reason_for(src, 14, ant, ant) for _, _, src, ant in expected]

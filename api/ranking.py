"""How a served list is put together from the published model and the customer's live state. Pure functions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from common.toplist import LazyTopList, TopList

RULE_BOOST = 1.0  # a rule with confidence 1 fired by today's basket weighs as much as the model's best item


class Ranked(NamedTuple):  # a tuple: made k times per request, a frozen dataclass cost several times more
    product_id: str
    score: float
    source: str
    reason: str


def reason_for(source: str, trend_days: float, antecedent: str | None = None, name: str | None = None) -> str:
    if source == "rules":
        return f"often bought with {name or antecedent} you just bought" if antecedent else "often bought together"
    if source == "repeat":
        return "you buy it regularly"
    if source in ("ease", "nmf"):
        return "customers who buy like you bought it"
    return f"best-seller in the last {trend_days:g} days"


def best_sellers(popular: Sequence[dict[str, Any]], k: int, trend_days: float,
                 exclude: frozenset[str] = frozenset()) -> list[Ranked]:
    top = [p for p in popular if p["product_id"] not in exclude][:k]
    best = max((p["buyers"] for p in top), default=1) or 1
    return [Ranked(p["product_id"], round(p["buyers"] / best, 5), "popular", reason_for("popular", trend_days))
            for p in top]


def treatment(
    model_list: TopList | LazyTopList,
    recent: Sequence[tuple[str, float]],
    rules: Mapping[str, Sequence[dict[str, Any]]],
    model_end_ts: float,
    basket_s: float,
    k: int,
    trend_days: float,
    names: dict[str, dict[str, Any]],
) -> list[Ranked]:
    """The published list, minus what the customer bought after the model's data ends, plus rules fired by
    today's basket (products bought within `basket_s` of the customer's latest purchase): the k best by score,
    equal scores in list order, then rule-only products in the order the rules fired them.

    The list is stored best first (`common.toplist`), so of the products no rule touched only the first k can
    be among the k best: those and the products rules touched are all that is scored and sorted."""
    bought_since = {p for p, ts in recent if ts > model_end_ts}
    latest = max((ts for _, ts in recent), default=0.0)
    basket = [p for p, ts in recent if ts >= latest - basket_s]
    boosted = _rule_boosts(basket, rules, bought_since)
    listed = {p: i for i, p in enumerate(model_list.products)} if boosted else {}
    # (score, source, antecedent of the deciding rule, product) in the order the full ranking would list them
    candidates: list[tuple[float, str, str | None, str]] = []
    untouched = 0
    for i, product in enumerate(model_list.products):
        if product in bought_since:
            continue
        boost = boosted.get(product)
        if boost is None:
            if untouched < k:
                candidates.append((model_list.score(i), model_list.source(i), None, product))
                untouched += 1
            elif not boosted:
                break
            continue
        candidates.append(_boosted(model_list.score(i), model_list.source(i), boost, product))
    candidates += [_boosted_from(boosts, product) for product, boosts in boosted.items() if product not in listed]
    candidates.sort(key=_score, reverse=True)  # stable: equal scores keep the order above
    ranked = []
    reasons: dict[str, str] = {}  # a source's reason when no rule decided
    for score, source, antecedent, product in candidates[:k]:
        if antecedent is None:
            reason = reasons.get(source) or reasons.setdefault(source, reason_for(source, trend_days))
        else:
            reason = reason_for(source, trend_days, antecedent, _name(names, antecedent))
        ranked.append(Ranked(product, round(score, 5), source, reason))
    return ranked


def _rule_boosts(basket: Sequence[str], rules: Mapping[str, Sequence[dict[str, Any]]], bought_since: set[str]
                 ) -> dict[str, list[tuple[str, float]]]:
    """product -> the (antecedent, boost) of each rule that fires it, in firing order; not for products in the
    basket or bought since the model."""
    held = set(basket)
    boosted: dict[str, list[tuple[str, float]]] = {}
    for antecedent in basket:
        for rule in rules.get(antecedent, ()):
            product = rule["product_id"]
            if product not in held and product not in bought_since:
                boosted.setdefault(product, []).append((antecedent, RULE_BOOST * float(rule["confidence"])))
    return boosted


def _boosted(score: float, source: str, boosts: list[tuple[str, float]], product: str
             ) -> tuple[float, str, str | None, str]:
    """A listed product's score with its rules' boosts: a rule at least as strong as the score so far becomes
    the reason."""
    antecedent: str | None = None
    for rule_antecedent, boost in boosts:
        if boost >= score:
            source, antecedent = "rules", rule_antecedent
        score += boost
    return score, source, antecedent, product


def _boosted_from(boosts: list[tuple[str, float]], product: str) -> tuple[float, str, str | None, str]:
    """A product only rules brought: the first rule's boost, then the others added to it."""
    first_antecedent, first = boosts[0]
    score, source, antecedent, _ = _boosted(first, "rules", boosts[1:], product)
    return score, source, antecedent or first_antecedent, product


def _score(candidate: tuple[float, str, str | None, str]) -> float:
    return candidate[0]


def _name(names: dict[str, dict[str, Any]], product: str | None) -> str | None:
    return names.get(product, {}).get("name") if product else None

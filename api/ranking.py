"""How a served list is put together from the published model and the customer's live state. Pure functions."""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from common.toplist import TopList

RULE_BOOST = 1.0  # a rule with confidence 1 fired by today's basket weighs as much as the model's best item


@dataclass(frozen=True)
class Ranked:
    product_id: str
    score: float
    source: str
    reason: str


def reason_for(source: str, trend_days: float, antecedent: str | None = None, name: str | None = None) -> str:
    if source == "rules":
        return f"often bought with {name or antecedent} you just bought" if antecedent else "often bought together"
    if source == "repeat":
        return "you buy it regularly"
    if source in ("ease", "nmf", "als"):
        return "customers who buy like you bought it"
    return f"best-seller in the last {trend_days:g} days"


def best_sellers(popular: Sequence[dict[str, Any]], k: int, trend_days: float,
                 exclude: frozenset[str] = frozenset()) -> list[Ranked]:
    top = [p for p in popular if p["product_id"] not in exclude][:k]
    best = max((p["buyers"] for p in top), default=1) or 1
    return [Ranked(p["product_id"], round(p["buyers"] / best, 5), "popular", reason_for("popular", trend_days))
            for p in top]


def treatment(
    model_list: TopList,
    recent: Sequence[tuple[str, float]],
    rules: Mapping[str, Sequence[dict[str, Any]]],
    model_end_ts: float,
    basket_s: float,
    k: int,
    trend_days: float,
    names: dict[str, dict[str, Any]],
) -> list[Ranked]:
    """The published list, minus what the customer bought after the model's data ends, plus rules fired by
    today's basket (products bought within `basket_s` of the customer's latest purchase)."""
    bought_since = {p for p, ts in recent if ts > model_end_ts}
    latest = max((ts for _, ts in recent), default=0.0)
    basket = [p for p, ts in recent if ts >= latest - basket_s]
    # product -> [score, source, antecedent of the deciding rule]; Ranked objects only for the k served
    scored: dict[str, list[Any]] = {
        product: [score, source, None]
        for product, score, source in zip(model_list.products, model_list.scores, model_list.sources, strict=True)
        if product not in bought_since
    }
    held = set(basket)
    for antecedent in basket:
        for rule in rules.get(antecedent, ()):
            product = rule["product_id"]
            if product in held or product in bought_since:
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
    return [
        Ranked(product, round(score, 5), source, reason_for(source, trend_days, antecedent, _name(names, antecedent)))
        for product, (score, source, antecedent) in top
    ]


def _name(names: dict[str, dict[str, Any]], product: str | None) -> str | None:
    return names.get(product, {}).get("name") if product else None

"""How a served list is put together from the published model and the customer's live state. Pure functions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from common.i18n import Gettext, english
from common.toplist import LazyTopList, TopList

RULE_BOOST = 1.0  # a rule with confidence 1 fired by today's basket weighs as much as the model's best item
Candidate = tuple[float, int, str, str | None, str]  # score, order, source, antecedent, product (see treatment)
RuleBoosts = list[tuple[str, float]]  # an antecedent's rules as (consequent product, boost), in the rules' order


class Ranked(NamedTuple):  # a tuple: made k times per request, a frozen dataclass cost several times more
    product_id: str
    score: float
    source: str
    reason: str


def reason_for(source: str, trend_days: float, antecedent: str | None = None, name: str | None = None,
               gettext: Gettext = english) -> str:
    """Why a product is in the list, in words a shop can show its customer (in the language of `gettext`)."""
    if source == "rules":
        if antecedent:
            return gettext("often bought with {product} you just bought").format(product=name or antecedent)
        return gettext("often bought together")
    if source == "repeat":
        return gettext("you buy it regularly")
    if source in ("ease", "nmf", "als", "tifu"):
        return gettext("customers who buy like you bought it")
    return gettext("best-seller in the last {days} days").format(days=f"{trend_days:g}")


def best_sellers(popular: Sequence[dict[str, Any]], k: int, trend_days: float,
                 exclude: frozenset[str] = frozenset(), gettext: Gettext = english) -> list[Ranked]:
    top = [p for p in popular if p["product_id"] not in exclude][:k]
    best = max((p["buyers"] for p in top), default=1) or 1
    reason = reason_for("popular", trend_days, gettext=gettext)
    return [Ranked(p["product_id"], round(p["buyers"] / best, 5), "popular", reason) for p in top]


def rule_boosts(rules: Sequence[dict[str, Any]]) -> RuleBoosts:
    """One antecedent's published rules as the ranking uses them; made once per antecedent and version (tuples:
    reading the rows' fields on every request cost a third of the rules' share of `/recommend`)."""
    return [(rule["product_id"], RULE_BOOST * float(rule["confidence"])) for rule in rules]


def treatment(
    model_list: TopList | LazyTopList,
    recent: Sequence[tuple[str, float]],
    rules: Mapping[str, RuleBoosts],
    model_end_ts: float,
    basket_s: float,
    k: int,
    trend_days: float,
    names: Mapping[str, dict[str, Any]],
    gettext: Gettext = english,
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
    products = model_list.products
    # (score, order, source, antecedent of the deciding rule, product); `order` is where scoring everything would
    # have met the product (listed ones by position, then rule-only ones as they fired), which breaks ties.
    candidates: list[Candidate] = []
    for i, product in enumerate(products):
        if product not in bought_since and product not in boosted:
            candidates.append((model_list.score(i), i, model_list.source(i), None, product))
            if len(candidates) == k:
                break
    if boosted:
        position = {p: i for i, p in enumerate(products)}
        for j, (product, boosts) in enumerate(boosted.items()):
            at = position.get(product)
            candidates.append(_boosted(0.0, len(products) + j, "rules", boosts, product) if at is None
                              else _boosted(model_list.score(at), at, model_list.source(at), boosts, product))
    candidates.sort(key=_rank)
    ranked = []
    reasons: dict[str, str] = {}  # a source's reason when no rule decided
    for score, _, source, antecedent, product in candidates[:k]:
        if antecedent is None:
            reason = reasons.get(source) or reasons.setdefault(
                source, reason_for(source, trend_days, gettext=gettext))
        else:
            reason = reason_for(source, trend_days, antecedent, _name(names, antecedent), gettext)
        ranked.append(Ranked(product, round(score, 5), source, reason))
    return ranked


def _rule_boosts(basket: Sequence[str], rules: Mapping[str, RuleBoosts], bought_since: set[str]
                 ) -> dict[str, list[tuple[str, float]]]:
    """product -> the (antecedent, boost) of each rule that fires it, in firing order; not for products in the
    basket or bought since the model."""
    held = set(basket)
    boosted: dict[str, list[tuple[str, float]]] = {}
    for antecedent in basket:
        for product, boost in rules.get(antecedent, ()):
            if product not in held and product not in bought_since:
                boosted.setdefault(product, []).append((antecedent, boost))
    return boosted


def _boosted(score: float, order: int, source: str, boosts: list[tuple[str, float]], product: str) -> Candidate:
    """A product's score with its rules' boosts added in firing order; a rule at least as strong as the score so
    far becomes the reason (so a product only rules brought, starting from 0, has its first rule's)."""
    antecedent: str | None = None
    for rule_antecedent, boost in boosts:
        if boost >= score:
            source, antecedent = "rules", rule_antecedent
        score += boost
    return score, order, source, antecedent, product


def _rank(candidate: Candidate) -> tuple[float, int]:
    return -candidate[0], candidate[1]


def _name(names: Mapping[str, dict[str, Any]], product: str | None) -> str | None:
    return names.get(product, {}).get("name") if product else None

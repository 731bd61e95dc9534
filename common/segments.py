"""The RFM segment rules (one table: who is in a segment, and what to do with them) and scoring a customer's live
RFM with the quintile edges a model version published. Shared by the batch (which segments every customer) and
the API (which segments one customer from the stream's live state)."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from common.i18n import N_, Gettext, english


@dataclass(frozen=True)
class SegmentRule:
    """`name` is the segment's id (in Redis, the API and the campaign export); `label`, `description` and `action`
    are English messages, translated by the catalogue where they are shown (`words`)."""

    name: str
    label: str
    description: str
    action: str
    r_min: int = 1
    r_max: int = 5
    f_min: int = 1
    f_max: int = 5
    m_min: int = 1

    def matches_scores(self, r: int, f: int, m: int) -> bool:
        return self.r_min <= r <= self.r_max and self.f_min <= f <= self.f_max and m >= self.m_min


# First match wins. Scores are quintiles 1..5 (5 = most recent / most frequent / biggest spender).
SEGMENT_RULES = (
    SegmentRule("champions", N_("Champions"), N_("bought recently, buy often and spend the most"),
                N_("reward them: early access and a loyalty perk rather than a discount"), r_min=4, f_min=4, m_min=4),
    SegmentRule("loyal", N_("Loyal"), N_("buy often, recently enough"),
                N_("upsell: a bundle from the categories they over-index on"), r_min=3, f_min=4),
    SegmentRule("new", N_("New"), N_("first orders, very recent"),
                N_("welcome: an incentive for the second order on what new customers buy"), r_min=5, f_max=1),
    SegmentRule("promising", N_("Promising"), N_("recent, not frequent yet"),
                N_("nurture: a time-limited offer to bring the next order forward"), r_min=4, f_max=3),
    SegmentRule("at_risk", N_("At risk"), N_("used to buy often, not lately"),
                N_("win back: a personal offer on the products they used to buy"), r_max=2, f_min=3),
    SegmentRule("hibernating", N_("Hibernating"), N_("long gone, bought little"),
                N_("reactivate cheaply: one best-seller discount, then stop if they do not respond"), r_max=2, f_max=2),
)
OTHER = SegmentRule("needs_attention", N_("Needs attention"), N_("middle of the road on recency and frequency"),
                    N_("re-engage: a reminder with picks from their favourite categories"))
ALL_RULES = (*SEGMENT_RULES, OTHER)
RULES_BY_NAME = {rule.name: rule for rule in ALL_RULES}


def words(name: str, gettext: Callable[[str], str]) -> dict[str, str]:
    """A segment's label, description and action in the language `gettext` speaks (an unknown name: only its
    label, the name itself)."""
    rule = RULES_BY_NAME.get(name)
    if rule is None:
        return {"label": name.replace("_", " ")}
    return {"label": gettext(rule.label), "description": gettext(rule.description), "action": gettext(rule.action)}


def suggested_action(segment: str, categories: Sequence[Mapping[str, Any]], gettext: Gettext = english) -> str:
    """The segment's action, led by its most over-represented category when it has one."""
    action = gettext(RULES_BY_NAME[segment].action)
    if not categories:
        return action
    return gettext("{action}; lead with {category}").format(action=action, category=categories[0]["category"])


def segment_for(r: int, f: int, m: int) -> str:
    for rule in SEGMENT_RULES:
        if rule.matches_scores(r, f, m):
            return rule.name
    return OTHER.name


@dataclass(frozen=True)
class Steps:
    """A score as a step function of a value: `scores[i]` for values above `edges[i-1]` and up to `edges[i]`
    (edges ascending, one score more than edges)."""

    edges: list[float]
    scores: list[int]

    def score(self, value: float) -> int:
        return self.scores[bisect_left(self.edges, value)]


@dataclass(frozen=True)
class CutPoints:
    """The quintile edges of one segmentation. Recency is scored on minus the days (fewer days = higher score),
    as the batch scores it; frequency and monetary on their values."""

    as_of: str
    minus_recency_days: Steps
    frequency: Steps
    monetary: Steps
    customers: int = 0
    notes: dict[str, Any] = field(default_factory=dict)

    def scores(self, recency_days: float, frequency: float, monetary: float) -> tuple[int, int, int]:
        return (self.minus_recency_days.score(-recency_days), self.frequency.score(frequency),
                self.monetary.score(monetary))

    def to_dict(self) -> dict[str, Any]:
        return {"as_of": self.as_of, "customers": self.customers,
                "minus_recency_days": vars(self.minus_recency_days), "frequency": vars(self.frequency),
                "monetary": vars(self.monetary)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CutPoints:
        return cls(as_of=data["as_of"], customers=int(data.get("customers", 0)),
                   minus_recency_days=Steps(**data["minus_recency_days"]), frequency=Steps(**data["frequency"]),
                   monetary=Steps(**data["monetary"]))


def live_segment(cut_points: CutPoints, recency_days: float, frequency: float, monetary: float) -> dict[str, Any]:
    r, f, m = cut_points.scores(recency_days, frequency, monetary)
    return {"segment": segment_for(r, f, m), "r": r, "f": f, "m": m, "recency_days": round(recency_days, 2),
            "frequency": frequency, "monetary": round(monetary, 2), "cut_points_as_of": cut_points.as_of}

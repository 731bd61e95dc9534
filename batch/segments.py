"""RFM scores and named segments. The segment rules live here and only here."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from batch.interactions import SECONDS_PER_DAY


@dataclass(frozen=True)
class SegmentRule:
    name: str
    description: str
    r_min: int = 1
    r_max: int = 5
    f_min: int = 1
    f_max: int = 5
    m_min: int = 1

    def matches(self, r: pd.Series, f: pd.Series, m: pd.Series) -> pd.Series:
        return r.between(self.r_min, self.r_max) & f.between(self.f_min, self.f_max) & (m >= self.m_min)


# First match wins. Scores are quintiles 1..5 (5 = most recent / most frequent / biggest spender).
SEGMENT_RULES = (
    SegmentRule("champions", "bought recently, buy often and spend the most", r_min=4, f_min=4, m_min=4),
    SegmentRule("loyal", "buy often, recently enough", r_min=3, f_min=4),
    SegmentRule("new", "first orders, very recent", r_min=5, f_max=1),
    SegmentRule("promising", "recent, not frequent yet", r_min=4, f_max=3),
    SegmentRule("at_risk", "used to buy often, not lately", r_max=2, f_min=3),
    SegmentRule("hibernating", "long gone, bought little", r_max=2, f_max=2),
)
OTHER = SegmentRule("needs_attention", "middle of the road on recency and frequency")


def rfm_table(lines: pd.DataFrame, as_of: pd.Timestamp | None = None) -> pd.DataFrame:
    """One row per customer: recency_days (from `as_of`, default the day after the last event), frequency
    (distinct orders), monetary (sum of amount), quintile scores r, f, m and the named segment."""
    snapshot = as_of if as_of is not None else lines["event_time"].max().normalize() + pd.Timedelta(days=1)
    per_customer = lines.groupby("customer_id").agg(
        last=("event_time", "max"), frequency=("order_id", "nunique"), monetary=("amount", "sum")
    )
    table = pd.DataFrame(index=per_customer.index)
    table["recency_days"] = ((snapshot - per_customer["last"]).dt.total_seconds() / SECONDS_PER_DAY).round(2)
    table["frequency"] = per_customer["frequency"]
    table["monetary"] = per_customer["monetary"].round(2)
    # As in the case study: recency reversed, frequency ranked first so ties do not collapse the quintiles.
    table["r"] = quintile(-table["recency_days"])
    table["f"] = quintile(table["frequency"].rank(method="first"))
    table["m"] = quintile(table["monetary"])
    table["segment"] = segment_of(table["r"], table["f"], table["m"])
    table["case_study_segment"] = case_study_segment(table["r"], table["f"], table["m"])
    return table.reset_index()


def quintile(values: pd.Series) -> pd.Series:
    """1..5 by quintile; with fewer distinct values than 5, ranks first so every score stays defined."""
    if values.nunique() < 5:
        values = values.rank(method="first")
    if len(values) < 5:
        return pd.Series(np.ceil(values.rank(method="first") / len(values) * 5).astype(int), index=values.index)
    return pd.qcut(values, 5, labels=False, duplicates="drop").astype(int) + 1


def segment_of(r: pd.Series, f: pd.Series, m: pd.Series) -> pd.Series:
    segment = pd.Series(OTHER.name, index=r.index, dtype=object)
    unassigned = pd.Series(True, index=r.index)
    for rule in SEGMENT_RULES:
        hit = unassigned & rule.matches(r, f, m)
        segment[hit] = rule.name
        unassigned &= ~hit
    return segment.astype("string")


def case_study_segment(r: pd.Series, f: pd.Series, m: pd.Series) -> pd.Series:
    """The case study's own rules: score starting with 5 -> Oro; r>=4 and f>=4 -> Plata; r<=2 and f>=4 ->
    Bronce; else Otro."""
    del m
    out = pd.Series("Otro", index=r.index, dtype=object)
    out[(r <= 2) & (f >= 4)] = "Bronce"
    out[(r >= 4) & (f >= 4)] = "Plata"
    out[r == 5] = "Oro"
    return out.astype("string")


def segment_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Size, share and average recency / frequency / monetary per segment, in rule order."""
    order = [rule.name for rule in SEGMENT_RULES] + [OTHER.name]
    summary = table.groupby("segment").agg(
        customers=("customer_id", "size"), recency_days=("recency_days", "mean"), frequency=("frequency", "mean"),
        monetary=("monetary", "mean"),
    )
    summary = summary.reindex([name for name in order if name in summary.index])
    summary["share"] = summary["customers"] / summary["customers"].sum()
    descriptions = {rule.name: rule.description for rule in (*SEGMENT_RULES, OTHER)}
    summary["description"] = [descriptions[name] for name in summary.index]
    return summary.round(2).reset_index()

"""RFM scores and named segments for every customer. The segment rules are one table, in common/segments.py
(the API scores a customer's live RFM with the same rules)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from batch.interactions import SECONDS_PER_DAY
from common.segments import ALL_RULES, OTHER, RULES_BY_NAME, CutPoints, SegmentRule, Steps
from common.segments import SEGMENT_RULES as SEGMENT_RULES  # re-exported: the rules table batch code and tests use


def rfm_table(lines: pd.DataFrame, as_of: pd.Timestamp | None = None) -> pd.DataFrame:
    """One row per customer: recency_days (from `as_of`, default the day after the last event), frequency
    (distinct orders), monetary (sum of amount), quintile scores r, f, m and the named segment."""
    snapshot = as_of if as_of is not None else snapshot_of(lines)
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


def snapshot_of(lines: pd.DataFrame) -> pd.Timestamp:
    """The RFM snapshot: the day after the last event, as in the case study."""
    snapshot: pd.Timestamp = lines["event_time"].max().normalize() + pd.Timedelta(days=1)
    return snapshot


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
        hit = unassigned & _matches(rule, r, f, m)
        segment[hit] = rule.name
        unassigned &= ~hit
    return segment.astype("string")


def _matches(rule: SegmentRule, r: pd.Series, f: pd.Series, m: pd.Series) -> pd.Series:
    return r.between(rule.r_min, rule.r_max) & f.between(rule.f_min, rule.f_max) & (m >= rule.m_min)


def cut_points(table: pd.DataFrame, as_of: pd.Timestamp) -> CutPoints:
    """The edges the quintile scores of `table` were cut at, so a live customer is scored as the batch scored
    everyone: a value scores like the batch's customers with values on the same side of each edge. (Customers tied
    on a value that straddles an edge got different scores in the batch, by rank; live they get the lower one.)"""
    return CutPoints(as_of=str(as_of), customers=len(table),
                     minus_recency_days=_steps(-table["recency_days"], table["r"]),
                     frequency=_steps(table["frequency"].astype(float), table["f"]),
                     monetary=_steps(table["monetary"], table["m"]))


def _steps(values: pd.Series, scores: pd.Series) -> Steps:
    levels = sorted(int(s) for s in scores.unique())
    edges = [float(values[scores <= level].max()) for level in levels[:-1]]
    return Steps(edges=edges, scores=levels)


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
    """Size, share, average recency / frequency / monetary and share of revenue per segment, in rule order."""
    order = [rule.name for rule in ALL_RULES]
    summary = table.groupby("segment").agg(
        customers=("customer_id", "size"), recency_days=("recency_days", "mean"), frequency=("frequency", "mean"),
        monetary=("monetary", "mean"), revenue=("monetary", "sum"),
    )
    summary = summary.reindex([name for name in order if name in summary.index])
    summary["share"] = summary["customers"] / summary["customers"].sum()
    summary["revenue_share"] = summary["revenue"] / summary["revenue"].sum()
    summary = summary.drop(columns="revenue")
    summary["description"] = [RULES_BY_NAME[name].description for name in summary.index]
    summary["action"] = [RULES_BY_NAME[name].action for name in summary.index]
    return summary.round({"recency_days": 2, "frequency": 2, "monetary": 2, "share": 4,
                          "revenue_share": 4}).reset_index()

"""Exploratory summaries of the cleaned history, as JSON for the API/UI and PNG plots for people."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from common.profiles import BAND_ORDER, age_band
from common.segments import ALL_RULES

TOP_CATEGORIES = 15
TOP_CITIES = 15
UNKNOWN = "unknown"


def explore(lines: pd.DataFrame) -> dict[str, Any]:
    orders = lines.groupby("order_id")
    per_customer_orders = lines.groupby("customer_id")["order_id"].nunique()
    per_product_orders = lines.groupby("product_id")["order_id"].nunique()
    basket_sizes = orders["product_id"].nunique()
    monthly = lines.set_index("event_time").resample("MS").agg({"amount": "sum", "order_id": "nunique"})
    monthly.index = pd.DatetimeIndex(monthly.index).strftime("%Y-%m")
    by_category = (lines.groupby("category").agg(amount=("amount", "sum"), lines=("product_id", "size"))
                   .sort_values("amount", ascending=False))
    return {
        "window": {"start": str(lines["event_time"].min()), "end": str(lines["event_time"].max())},
        "totals": {"lines": len(lines), "orders": int(lines["order_id"].nunique()),
                   "customers": int(lines["customer_id"].nunique()), "products": int(lines["product_id"].nunique()),
                   "categories": int(lines["category"].nunique()), "revenue": round(float(lines["amount"].sum()), 2)},
        "sales_by_month": [{"month": str(month), "revenue": round(float(row["amount"]), 2),
                            "orders": int(row["order_id"])} for month, row in monthly.iterrows()],
        "sales_by_category": [{"category": str(cat), "revenue": round(float(row["amount"]), 2),
                               "lines": int(row["lines"])} for cat, row in by_category.iterrows()],
        "orders_per_customer": describe(per_customer_orders),
        "orders_per_product": describe(per_product_orders),
        "basket_size": describe(basket_sizes),
        "repeat_customer_share": round(float((per_customer_orders > 1).mean()), 4),
    }


def describe(values: pd.Series) -> dict[str, float]:
    q = values.quantile([0.25, 0.5, 0.75, 0.9, 0.99])
    return {"mean": round(float(values.mean()), 3), "p25": float(q[0.25]), "median": float(q[0.5]),
            "p75": float(q[0.75]), "p90": float(q[0.9]), "p99": float(q[0.99]), "max": float(values.max())}


def plot(lines: pd.DataFrame, summary: dict[str, Any], folder: Path) -> list[Path]:
    """One PNG per view; returns the written paths."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    months = summary["sales_by_month"]
    fig, ax = plt.subplots(figsize=(8, 3.5))
    ax.bar([m["month"] for m in months], [m["revenue"] for m in months], color="#4C72B0")
    ax.set_title("Revenue by month")
    ax.tick_params(axis="x", rotation=60)
    written.append(_save(fig, folder / "sales_by_month.png"))

    cats = summary["sales_by_category"][:TOP_CATEGORIES][::-1]
    fig, ax = plt.subplots(figsize=(8, 5))
    ax.barh([c["category"] for c in cats], [c["revenue"] for c in cats], color="#55A868")
    ax.set_title(f"Revenue by category (top {len(cats)})")
    written.append(_save(fig, folder / "sales_by_category.png"))

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.5))
    series = {
        "orders per customer": lines.groupby("customer_id")["order_id"].nunique(),
        "orders per product": lines.groupby("product_id")["order_id"].nunique(),
        "products per basket": lines.groupby("order_id")["product_id"].nunique(),
    }
    for ax, (title, values) in zip(axes, series.items(), strict=True):
        ax.hist(values.clip(upper=float(values.quantile(0.99))), bins=40, color="#C44E52")
        ax.set_title(f"{title} (to p99)")
        ax.set_yscale("log")
    written.append(_save(fig, folder / "distributions.png"))
    return written


def plot_segments(summary: pd.DataFrame, folder: Path) -> Path:
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.bar(summary["segment"], summary["customers"], color="#8172B2")
    for x, (n, share) in enumerate(zip(summary["customers"], summary["share"], strict=True)):
        ax.text(x, n, f"{share:.0%}", ha="center", va="bottom", fontsize=8)
    ax.set_title("Customers per RFM segment")
    ax.tick_params(axis="x", rotation=30)
    return _save(fig, folder / "segments.png")


def plot_evaluation(table: dict[str, dict[str, dict[str, float]]], folder: Path, metric: str = "ndcg@10") -> Path:
    fig, axes = plt.subplots(1, len(table), figsize=(6 * len(table), 3.5), squeeze=False)
    for ax, (variant, rows) in zip(axes[0], table.items(), strict=True):
        names = list(rows)
        values = [rows[n][metric] for n in names]
        colors = ["#DD8452" if n == "hybrid" else "#4C72B0" for n in names]
        ax.barh(names[::-1], values[::-1], color=colors[::-1])
        for y, v in enumerate(values[::-1]):
            ax.text(v, y, f" {v:.3f}", va="center", fontsize=8)
        ax.set_title(f"{metric}, {variant.replace('_', ' ')}")
    return _save(fig, folder / "evaluation.png")


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def explore_customers(lines: pd.DataFrame, customers: pd.DataFrame, segments: pd.DataFrame) -> dict[str, Any]:
    """The customers table against the purchases: profiles by department (region), city, gender and age band,
    with buyers and revenue; the segment mix by department and by age band. Missing values count as 'unknown'."""
    ages = customers["age"].astype("Int64")
    frame = pd.DataFrame({
        "customer_id": customers["customer_id"].astype(str).to_numpy(),
        "region": customers["region"].astype("string").fillna(UNKNOWN).to_numpy(),
        "city": customers["city"].astype("string").fillna(UNKNOWN).to_numpy(),
        "gender": customers["gender"].astype("string").fillna(UNKNOWN).to_numpy(),
        "age_band": [age_band(None if pd.isna(a) else int(a)) or UNKNOWN for a in ages],
    })
    frame["revenue"] = frame["customer_id"].map(lines.groupby("customer_id")["amount"].sum()).fillna(0.0)
    frame["segment"] = frame["customer_id"].map(segments.set_index("customer_id")["segment"].astype(str))
    buyers = frame[frame["segment"].notna()]
    return {
        "profiles": len(frame), "with_purchases": len(buyers),
        "by_region": _profile_counts(frame, "region"),
        "by_city": _profile_counts(frame, "city")[:TOP_CITIES],
        "by_gender": _profile_counts(frame, "gender"),
        "by_age_band": _profile_counts(frame, "age_band", order=[*BAND_ORDER, UNKNOWN]),
        "segment_mix_by_region": _segment_mix(buyers, "region"),
        "segment_mix_by_age_band": _segment_mix(buyers, "age_band"),
    }


def _profile_counts(frame: pd.DataFrame, column: str, order: list[str] | None = None) -> list[dict[str, Any]]:
    table = frame.groupby(column).agg(customers=("customer_id", "size"), buyers=("segment", "count"),
                                      revenue=("revenue", "sum"))
    table = table.reindex([v for v in order if v in table.index]) if order else table.sort_values(
        "customers", ascending=False)
    total = float(table["revenue"].sum())
    table["revenue_share"] = table["revenue"] / total if total else 0.0
    return [{column: str(value), "customers": int(row["customers"]), "buyers": int(row["buyers"]),
             "revenue": round(float(row["revenue"]), 2), "revenue_share": round(float(row["revenue_share"]), 4)}
            for value, row in table.iterrows()]


def _segment_mix(buyers: pd.DataFrame, column: str) -> list[dict[str, Any]]:
    counts = buyers.groupby([column, "segment"]).size().rename("customers").reset_index()
    counts["share"] = counts["customers"] / counts.groupby(column)["customers"].transform("sum")
    return [{column: str(row[column]), "segment": str(row["segment"]), "customers": int(row["customers"]),
             "share": round(float(row["share"]), 4)} for _, row in counts.iterrows()]


def plot_customers(summary: dict[str, Any], folder: Path) -> list[Path]:
    """customers.png (profiles by department, city, gender, age band), customer_revenue.png (revenue by
    department and age band), segment_mix.png (segment shares within each department and age band)."""
    folder.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(2, 2, figsize=(12, 7))
    for ax, (key, column, title) in zip(axes.ravel(), (
            ("by_region", "region", "Customers by department"), ("by_city", "city", f"Top {TOP_CITIES} cities"),
            ("by_gender", "gender", "Customers by gender"), ("by_age_band", "age_band", "Customers by age band")),
            strict=True):
        rows = summary[key][::-1]
        ax.barh([r[column] for r in rows], [r["customers"] for r in rows], color="#4C72B0")
        ax.set_title(title)
    written = [_save(fig, folder / "customers.png")]

    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    for ax, (key, column, title) in zip(axes, (("by_region", "region", "Revenue by department"),
                                               ("by_age_band", "age_band", "Revenue by age band")), strict=True):
        rows = summary[key][::-1]
        ax.barh([r[column] for r in rows], [r["revenue"] for r in rows], color="#55A868")
        for y, r in enumerate(rows):
            ax.text(r["revenue"], y, f" {r['revenue_share']:.0%}", va="center", fontsize=8)
        ax.set_title(title)
    written.append(_save(fig, folder / "customer_revenue.png"))

    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
    segments = [rule.name for rule in ALL_RULES]
    for ax, (key, column, title) in zip(axes, (("segment_mix_by_region", "region", "Segment mix by department"),
                                               ("segment_mix_by_age_band", "age_band", "Segment mix by age band")),
                                        strict=True):
        mix = pd.DataFrame(summary[key], columns=[column, "segment", "share"])
        table = mix.pivot_table(index=column, columns="segment", values="share", fill_value=0.0)
        table = table.reindex(columns=[s for s in segments if s in table.columns])
        table.plot.barh(stacked=True, ax=ax, legend=ax is axes[-1], colormap="tab10", width=0.8)
        ax.set_xlim(0, 1)
        ax.set_title(title)
    axes[-1].legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    written.append(_save(fig, folder / "segment_mix.png"))
    return written

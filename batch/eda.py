"""Exploratory summaries of the cleaned history, as JSON for the API/UI and PNG plots for people."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

TOP_CATEGORIES = 15


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




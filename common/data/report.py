"""The cleaning report (every removed row counted by reason) and the basic EDA numbers."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd


@dataclass
class CleaningReport:
    source: str
    mapping: str
    raw_rows: int
    removed: dict[str, int] = field(default_factory=dict)
    kept_after: dict[str, int] = field(default_factory=dict)
    filled: dict[str, int] = field(default_factory=dict)
    customers: dict[str, int] = field(default_factory=dict)
    products: dict[str, int] = field(default_factory=dict)  # the products table's own counts, when there is one
    currency: str = "COP"  # the amounts' currency, as the mapping names it (the case study's pesos by default)

    def record(self, reason: str, removed: int, kept: int) -> None:
        self.removed[reason] = removed
        self.kept_after[reason] = kept

    @property
    def kept_rows(self) -> int:
        return self.raw_rows - sum(self.removed.values())

    @property
    def reconciles(self) -> bool:
        """raw = kept + removed by reason, and the running count ends where the kept table ends."""
        last = list(self.kept_after.values())[-1] if self.kept_after else self.raw_rows
        return last == self.kept_rows

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"kept_rows": self.kept_rows, "reconciles": self.reconciles}

    def write_json(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2))

    def render(self) -> str:
        width = max([len(r) for r in self.removed] + [20])
        rows = [f"Cleaning report: {self.source} (mapping {self.mapping})",
                f"{'step':<{width}}  {'removed':>10}  {'rows left':>10}",
                f"{'raw rows':<{width}}  {'':>10}  {self.raw_rows:>10,}"]
        rows += [f"{reason:<{width}}  {n:>10,}  {self.kept_after[reason]:>10,}" for reason, n in self.removed.items()]
        rows.append(f"{'kept':<{width}}  {sum(self.removed.values()):>10,}  {self.kept_rows:>10,}")
        rows.append(f"reconciles (raw = kept + removed): {'yes' if self.reconciles else 'NO'}")
        rows += [f"filled {name}: {n:,}" for name, n in self.filled.items()]
        if self.customers:
            rows.append("customers: " + ", ".join(f"{k} {v:,}" for k, v in self.customers.items()))
        if self.products:
            rows.append("products table: " + ", ".join(f"{k} {v:,}" for k, v in self.products.items()))
        return "\n".join(rows)


def summarize(lines: pd.DataFrame) -> dict[str, Any]:
    """Basic EDA numbers for a canonical purchase-line table."""
    if lines.empty:
        return {"lines": 0}
    per_order = lines.groupby("order_id").size()
    orders_per_customer = lines.groupby("customer_id")["order_id"].nunique()
    product_lines = lines["product_id"].value_counts()
    top_decile = max(1, len(product_lines) // 10)
    return {
        "lines": len(lines),
        "customers": int(lines["customer_id"].nunique()),
        "orders": int(lines["order_id"].nunique()),
        "products": int(lines["product_id"].nunique()),
        "categories": int(lines["category"].nunique()),
        "first_event": str(lines["event_time"].min()),
        "last_event": str(lines["event_time"].max()),
        "units": int(lines["units"].sum()),
        "revenue": round(float(lines["amount"].sum()), 2),
        "lines_per_order_mean": round(float(per_order.mean()), 3),
        "lines_per_order_median": float(per_order.median()),
        "orders_per_customer_mean": round(float(orders_per_customer.mean()), 3),
        "orders_per_customer_median": float(orders_per_customer.median()),
        "repeat_customer_share": round(float((orders_per_customer >= 2).mean()), 4),
        "top10pct_products_line_share": round(float(product_lines.iloc[:top_decile].sum() / len(lines)), 4),
    }


def render_summary(summary: dict[str, Any]) -> str:
    width = max(len(k) for k in summary)
    return "\n".join(
        f"{k:<{width}}  {v:,}" if isinstance(v, int) else f"{k:<{width}}  {v}" for k, v in summary.items()
    )

"""What to offer each RFM segment: the products and categories that make up more of its purchases than of the
whole shop's (lift, with the counts behind it), the segment's share of revenue, and a one-line action; and the
export a campaign tool takes (customer id, segment, offered products)."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from common.data.load import UNKNOWN_CATEGORY
from common.segments import RULES_BY_NAME, suggested_action

TOP_PRODUCTS = 10
TOP_CATEGORIES = 5
# An item is offered to a segment only when enough of its customers bought it: at least this many, and at least
# this share of the segment (a handful of buyers gives a high but meaningless lift).
MIN_SEGMENT_BUYERS = 5
MIN_SEGMENT_SHARE = 0.02
OFFERS_PER_CUSTOMER = 5


def segment_offers(lines: pd.DataFrame, segments: pd.DataFrame, names: dict[str, dict[str, Any]] | None = None,
                   min_buyers: int = MIN_SEGMENT_BUYERS, min_share: float = MIN_SEGMENT_SHARE
                   ) -> dict[str, dict[str, Any]]:
    """segment -> {customers, revenue, revenue_share, action, products: [...], categories: [...]}.

    Lift compares what the segment buys with what the shop buys: (the item's share of the segment's purchase
    lines) / (its share of all purchase lines), so a segment of occasional buyers is compared on its mix, not its
    volume. Only items with lift > 1 bought by at least max(`min_buyers`, `min_share` of the segment) of its
    customers, highest lift first. Lines without a category are left out of the category lift."""
    names = names or {}
    segment_of = segments.set_index("customer_id")["segment"].astype(str)
    tagged = lines.assign(segment=lines["customer_id"].map(segment_of))
    revenue = tagged.groupby("segment")["amount"].sum()
    total_revenue = float(tagged["amount"].sum())
    sizes = segment_of.value_counts()
    categorised = tagged[~tagged["category"].isin([UNKNOWN_CATEGORY, ""])]
    offers: dict[str, dict[str, Any]] = {}
    for name, customers in sizes.items():
        segment = str(name)
        needed = max(min_buyers, math.ceil(min_share * int(customers)))
        products = over_represented(tagged, "product_id", segment, needed)
        categories = over_represented(categorised, "category", segment, needed)
        for row in products:
            row |= {"name": names.get(row["product_id"], {}).get("name"),
                    "category": names.get(row["product_id"], {}).get("category")}
        seg_revenue = float(revenue.get(segment, 0.0))
        offers[segment] = {
            "segment": segment, "customers": int(customers), "share": round(int(customers) / len(segments), 4),
            "revenue": round(seg_revenue, 2), "revenue_share": round(seg_revenue / total_revenue, 4)
            if total_revenue else 0.0,
            "description": RULES_BY_NAME[segment].description, "min_segment_buyers": needed,
            "action": suggested_action(segment, categories[:TOP_CATEGORIES]),
            "products": products[:TOP_PRODUCTS], "categories": categories[:TOP_CATEGORIES],
        }
    return offers


def over_represented(tagged: pd.DataFrame, column: str, segment: str, min_buyers: int) -> list[dict[str, Any]]:
    """`tagged`: purchase lines with the buyer's segment. Items whose share of the segment's lines beats their
    share of all lines, with the counts behind the lift."""
    mine = tagged[tagged["segment"] == segment]
    table = pd.DataFrame({"segment_lines": mine.groupby(column).size(),
                          "segment_buyers": mine.groupby(column)["customer_id"].nunique()})
    table["shop_lines"] = tagged.groupby(column).size().reindex(table.index)
    segment_total, shop_total = len(mine), len(tagged)
    table["lift"] = (table["segment_lines"] / segment_total) / (table["shop_lines"] / shop_total)
    table = table[(table["segment_buyers"] >= min_buyers) & (table["lift"] > 1)]
    table = table.rename_axis(column).reset_index().sort_values(["lift", "segment_buyers", column],
                                                                ascending=[False, False, True])
    return [{column: str(row[column]), "segment_buyers": int(row["segment_buyers"]),
             "segment_lines": int(row["segment_lines"]), "segment_total_lines": segment_total,
             "shop_lines": int(row["shop_lines"]), "shop_total_lines": shop_total,
             "lift": round(float(row["lift"]), 3)} for _, row in table.iterrows()]


def offer_export(lines: pd.DataFrame, segments: pd.DataFrame, offers: dict[str, dict[str, Any]],
                 per_customer: int = OFFERS_PER_CUSTOMER) -> pd.DataFrame:
    """customer_id, segment, offered_products (';'-separated ids), offered_names: each customer's segment offer
    without the products they already bought, best lift first."""
    bought = lines.groupby("customer_id")["product_id"].agg(set)
    rows = []
    for customer, segment in zip(segments["customer_id"].astype(str), segments["segment"].astype(str), strict=True):
        have = bought.get(customer, set())
        offered = [p for p in offers.get(segment, {}).get("products", []) if p["product_id"] not in have]
        offered = offered[:per_customer]
        rows.append((customer, segment, ";".join(p["product_id"] for p in offered),
                     ";".join(str(p.get("name") or p["product_id"]) for p in offered)))
    return pd.DataFrame(rows, columns=["customer_id", "segment", "offered_products", "offered_names"])

"""Segment offers equal a direct pandas computation, and the campaign export leaves out what was bought."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from batch.offers import offer_export, segment_offers
from batch.segments import rfm_table


@pytest.fixture(scope="module")
def shop() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(3)
    n = 6000
    customers = rng.integers(0, 300, n)
    # Heavy customers (low ids, many lines) lean towards the first products and category A.
    products = np.where(rng.random(n) < 0.5, rng.integers(0, 15, n), rng.integers(0, 60, n))
    lines = pd.DataFrame({
        "customer_id": [f"c{c}" for c in customers], "order_id": [f"o{c}-{i % 7}" for i, c in enumerate(customers)],
        "product_id": [f"p{p}" for p in products], "category": np.where(products < 20, "A", np.where(products < 40,
                                                                                                        "B", "C")),
        "amount": np.round(rng.uniform(1, 50, n), 2),
        "event_time": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 300, n) + customers // 3, "D"),
    })
    lines.loc[lines.index[:40], "category"] = "unknown"
    return lines, rfm_table(lines)


def _expected(lines: pd.DataFrame, segments: pd.DataFrame, segment: str, column: str) -> pd.DataFrame:
    """The lift computed directly: shares of purchase lines by crosstab, buyers by nunique."""
    tagged = lines.merge(segments[["customer_id", "segment"]], on="customer_id")
    if column == "category":
        tagged = tagged[tagged["category"] != "unknown"]
    share = pd.crosstab(tagged[column], tagged["segment"], normalize="columns")
    overall = tagged[column].value_counts(normalize=True)
    buyers = tagged[tagged["segment"] == segment].groupby(column)["customer_id"].nunique()
    frame = pd.DataFrame({"lift": share[segment] / overall.reindex(share.index), "buyers": buyers}).dropna()
    needed = max(5, int(np.ceil(0.02 * (segments["segment"] == segment).sum())))
    frame = frame[(frame["lift"] > 1) & (frame["buyers"] >= needed)]
    return frame.sort_values(["lift", "buyers"], ascending=False)


def test_offers_equal_a_pandas_computation(shop: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    lines, segments = shop
    offers = segment_offers(lines, segments, {"p1": {"name": "One", "category": "A"}})
    assert set(offers) == set(segments["segment"])
    revenue = lines.merge(segments, on="customer_id").groupby("segment")["amount"].sum() / lines["amount"].sum()
    checked = 0
    for segment, offer in offers.items():
        assert offer["customers"] == (segments["segment"] == segment).sum()
        assert offer["revenue_share"] == pytest.approx(revenue[segment], abs=1e-4)
        for column, key in (("product_id", "products"), ("category", "categories")):
            expected = _expected(lines, segments, segment, column).head(len(offer[key]))
            assert [row[column] for row in offer[key]] == list(expected.index)
            assert [row["lift"] for row in offer[key]] == pytest.approx(list(expected["lift"]), abs=1e-3)
            assert [row["segment_buyers"] for row in offer[key]] == list(expected["buyers"])
            checked += len(offer[key])
        if offer["categories"]:
            assert offer["action"].endswith(f"lead with {offer['categories'][0]['category']}")
    assert checked > 20
    named = [row for offer in offers.values() for row in offer["products"] if row["product_id"] == "p1"]
    assert all(row["name"] == "One" for row in named)


def test_lift_counts_reproduce_the_lift(shop: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    lines, _ = shop
    for offer in segment_offers(*shop).values():
        for row in offer["products"]:
            assert row["lift"] == pytest.approx((row["segment_lines"] / row["segment_total_lines"])
                                                / (row["shop_lines"] / row["shop_total_lines"]), abs=1e-3)
            assert row["shop_total_lines"] == len(lines)


def test_export_offers_each_customer_their_segments_products_not_yet_bought(
    shop: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    lines, segments = shop
    offers = segment_offers(lines, segments)
    export = offer_export(lines, segments, offers)
    assert list(export.columns) == ["customer_id", "segment", "offered_products", "offered_names"]
    assert len(export) == len(segments)
    bought = lines.groupby("customer_id")["product_id"].agg(set)
    for customer, segment, products in zip(export["customer_id"], export["segment"], export["offered_products"],
                                           strict=True):
        offered = [p for p in str(products).split(";") if p]
        ranked = [p["product_id"] for p in offers[str(segment)]["products"] if p["product_id"] not in bought[
            str(customer)]]
        assert offered == ranked[:5]

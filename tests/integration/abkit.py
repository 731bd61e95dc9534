"""The A/B ground truth, computed directly from exposures and purchases."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from common.events import ExposureEvent, PurchaseEvent


def expected_conversions(exposures: Sequence[ExposureEvent], purchases: Sequence[PurchaseEvent], window: timedelta
                         ) -> dict[str, dict[str, int]]:
    """Per group: purchase lines of a product shown to the customer within `window` before, their revenue in
    cents, and the distinct customers converted. Computed directly from the events."""
    out = {g: {"converted_items": 0, "revenue_cents": 0, "customers": 0} for g in ("control", "treatment")}
    converted: dict[str, set[str]] = {"control": set(), "treatment": set()}
    by_customer: dict[str, list[ExposureEvent]] = {}
    for e in exposures:
        by_customer.setdefault(e.customer_id, []).append(e)
    for p in purchases:
        shown = [e for e in by_customer.get(p.customer_id, []) if p.product_id in e.product_ids
                 and e.event_time <= p.event_time <= e.event_time + window]
        if shown:
            group = shown[0].group
            out[group]["converted_items"] += 1
            out[group]["revenue_cents"] += round(p.amount * 100)
            converted[group].add(p.customer_id)
    for g in out:
        out[g]["customers"] = len(converted[g])
    return out

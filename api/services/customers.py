"""What `/customers/{id}` derives from the stored state: recency and the live segment from the live RFM, the
profile with age and age band. Pure functions."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise
from statistics import median
from typing import Any

from common.profiles import profile_view
from common.rfm import RfmState
from common.segments import CutPoints, live_segment


@dataclass(frozen=True)
class Live:
    recency_days: float
    segment: dict[str, Any] | None  # None without published cut points


def live_segment_of(rfm_fields: dict[str, str], as_of: int, cut_points: CutPoints | None) -> Live | None:
    """Recency on the stream's clock and, with the model's cut points, the segment of the live R/F/M."""
    if not rfm_fields:
        return None
    rfm = RfmState.from_hash(rfm_fields)
    recency = round(rfm.recency_days(as_of), 2)
    segment = live_segment(cut_points, recency, rfm.orders, rfm.monetary) if cut_points is not None else None
    return Live(recency, segment)


def profile_of(fields: dict[str, str], as_of: int) -> dict[str, Any] | None:
    return profile_view(fields, datetime.fromtimestamp(as_of, UTC).date()) if fields else None


DAY_S = 86400
NEW_TO_MODEL = "new_to_model"


def buy_cycle(published: str | None, last_bought: Mapping[str, float], as_of: float,
              products: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The customer's buy cycles: the days the model saw them buy each product they buy again, plus the stream's
    newer purchase of it (a later day than the model's last), the median days between purchases, and when the
    next one is due (overdue when that is before `as_of`, the stream's clock)."""
    cycles = []
    for product, days in json.loads(published) if published else []:
        bought = [day * DAY_S for day in days]
        live = last_bought.get(product)
        if live is not None and live >= bought[-1] + DAY_S:
            bought.append(live)
        cycle_days = median((later - earlier) / DAY_S for earlier, later in pairwise(bought))
        due = bought[-1] + cycle_days * DAY_S
        cycles.append({"product_id": product, "name": products.get(product, {}).get("name"), "purchases": bought,
                       "cycle_days": round(cycle_days, 2), "due_at": due, "overdue": due < as_of})
    return cycles


def movement(last_night: list[str | None], live: list[str | None]) -> list[dict[str, Any]]:
    """How many customers moved from each segment of last night's model to each live one (a customer the model
    did not know comes from "new_to_model"), most customers first."""
    counts: dict[tuple[str, str], int] = {}
    for before, now in zip(last_night, live, strict=True):
        if now is not None:
            key = (before or NEW_TO_MODEL, now)
            counts[key] = counts.get(key, 0) + 1
    return [{"from_segment": before, "to_segment": now, "customers": n}
            for (before, now), n in sorted(counts.items(), key=lambda item: (-item[1], item[0]))]

"""What `/customers/{id}` derives from the stored state: recency and the live segment from the live RFM, the
profile with age and age band. Pure functions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
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

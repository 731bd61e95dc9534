from __future__ import annotations

from fastapi import APIRouter

from api.deps import State
from api.schemas import AbSummary, AbTimeline
from api.services.ab import read_summary, read_timeline

router = APIRouter(tags=["ab"])


@router.get("/ab/summary", response_model=AbSummary)
async def ab_summary(state: State) -> AbSummary:
    """Conversion per group (customers who bought an exposed product within the attribution window), uplift,
    its 95% interval and the two-proportion z-test."""
    return await read_summary(state)


@router.get("/ab/timeline", response_model=AbTimeline)
async def ab_timeline(state: State) -> AbTimeline:
    """Conversion per group over event-time days: cumulative customers exposed and converted (each counted on
    the day of their first exposure / first conversion), the rate and its 95% interval."""
    return await read_timeline(state)

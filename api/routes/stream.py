from __future__ import annotations

from fastapi import APIRouter

from api.deps import State
from api.schemas import StreamStats
from api.services.memory import redis_memory
from api.services.stream import latest_purchases, stream_counters

router = APIRouter(tags=["stream"])
LATEST_SHOWN = 20


@router.get("/stream/stats", response_model=StreamStats)
async def stream_stats(state: State) -> StreamStats:
    """The stream worker's live counters, the latest purchases it applied (with the customer's segment in the
    published model) and how full Redis is."""
    stats = await stream_counters(state)
    return StreamStats(stats={k: _number(v) for k, v in stats.items()},
                       latest=await latest_purchases(state, LATEST_SHOWN), memory=await redis_memory(state))


def _number(text: str) -> float | int | str:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text

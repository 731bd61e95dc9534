from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter

from api.deps import State

router = APIRouter(tags=["stream"])
LATEST_SHOWN = 20


@router.get("/stream/stats")
async def stream_stats(state: State) -> dict[str, Any]:
    """The stream worker's live counters and the latest purchases it applied."""
    pipe = state.redis.pipeline(transaction=False)
    pipe.hgetall(state.keys.stream_stats())
    pipe.lrange(state.keys.stream_latest(), 0, LATEST_SHOWN - 1)
    stats, latest = await pipe.execute()
    return {
        "stats": {k.decode(): _number(v.decode()) for k, v in stats.items()},
        "latest": [json.loads(item) for item in latest],
    }


def _number(text: str) -> float | int | str:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text

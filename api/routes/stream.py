from __future__ import annotations

import json

from fastapi import APIRouter

from api.deps import State
from api.schemas import LatestPurchase, StreamStats
from api.services.memory import redis_memory

router = APIRouter(tags=["stream"])
LATEST_SHOWN = 20


@router.get("/stream/stats", response_model=StreamStats)
async def stream_stats(state: State) -> StreamStats:
    """The stream worker's live counters, the latest purchases it applied (with the customer's segment in the
    published model) and how full Redis is."""
    pipe = state.redis.pipeline(transaction=False)
    pipe.hgetall(state.keys.stream_stats())
    pipe.lrange(state.keys.stream_latest(), 0, LATEST_SHOWN - 1)
    stats, latest = await pipe.execute()
    view = await state.models.get()  # also keeps the live catalogue fresh for the names
    products = state.models.products()
    purchases = [LatestPurchase.model_validate_json(item) for item in latest]
    segments: list[bytes | str | None] = [None] * len(purchases)
    if view is not None and purchases:
        segments = await state.redis.hmget(state.keys.model_segments(view.version),
                                           [p.customer_id for p in purchases])
    for purchase, segment in zip(purchases, segments, strict=True):
        purchase.name = products.get(purchase.product_id, {}).get("name")
        purchase.segment = json.loads(segment)["segment"] if segment else None
    return StreamStats(stats={k.decode(): _number(v.decode()) for k, v in stats.items()}, latest=purchases,
                       memory=await redis_memory(state))


def _number(text: str) -> float | int | str:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text

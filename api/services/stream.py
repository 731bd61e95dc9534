"""What `/stream/stats` reads: the stream worker's live counters and the latest purchases it applied, each with
the customer's segment in the published model."""

from __future__ import annotations

import json
from typing import cast

from api.schemas import LatestPurchase
from api.state import ApiState


async def stream_counters(state: ApiState) -> dict[str, str]:
    raw = cast(dict[bytes, bytes], await state.redis.hgetall(state.keys.stream_stats()))
    return {k.decode(): v.decode() for k, v in raw.items()}


async def latest_purchases(state: ApiState, shown: int) -> list[LatestPurchase]:
    """The newest `shown` purchases, named from the live catalogue, with the segment of the current version."""
    latest = await state.redis.lrange(state.keys.stream_latest(), 0, shown - 1)
    view = await state.models.get()  # also keeps the live catalogue fresh for the names
    products = state.models.products()
    purchases = [LatestPurchase.model_validate_json(item) for item in latest]
    segments: list[bytes | str | None] = [None] * len(purchases)
    if view is not None and purchases:
        pipe = state.redis.pipeline(transaction=False)
        for purchase in purchases:
            pipe.hget(state.keys.model_segments(view.version, purchase.customer_id), purchase.customer_id)
        segments = await pipe.execute()
    for purchase, segment in zip(purchases, segments, strict=True):
        purchase.name = products.get(purchase.product_id, {}).get("name")
        purchase.segment = json.loads(segment)["segment"] if segment else None
    return purchases

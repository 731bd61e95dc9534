"""Floors for benchmarks/api_latency.py, mounted only with RECSYS_API_FLOOR_ENDPOINTS=1: the same app and
middleware answering a constant, and answering with exactly the Redis reads `/recommend` makes, raw."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import CustomerIdQuery, State

router = APIRouter(prefix="/bench", tags=["bench"], include_in_schema=False)
CONSTANT = {"status": "ok", "items": [{"product_id": "p1", "score": 1.0}]}


@router.get("/constant")
async def constant() -> dict[str, Any]:
    return CONSTANT


@router.get("/same-keys")
async def same_keys(state: State, customer_id: CustomerIdQuery) -> dict[str, Any]:
    view = state.models.view
    pipe = state.redis.pipeline(transaction=False)
    pipe.get(state.keys.model_current())
    pipe.zrevrange(state.keys.customer_recent(customer_id), 0, -1, withscores=True)
    pipe.hget(state.keys.model_topn(view.version if view else ""), customer_id)
    current, recent, topn = await pipe.execute()
    await state.models.observe(current.decode() if current else None)
    return {"current": current, "recent": [[p, ts] for p, ts in recent], "topn": topn}

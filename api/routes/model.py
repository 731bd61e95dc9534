from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, HTTPException

from api.deps import State
from api.model_cache import ModelView
from api.state import ApiState

router = APIRouter(tags=["model"])


async def require_model(state: ApiState) -> ModelView:
    view = await state.models.get()
    if view is None:
        raise HTTPException(503, "no model is published yet: run `recsys batch run`")
    return view


@router.get("/model", responses={503: {"description": "no model"}})
async def model(state: State) -> dict[str, Any]:
    """The current version's model card: data window, parameters, offline metrics, EDA and cleaning."""
    view = await require_model(state)
    card: dict[str, Any] = json.loads(await state.redis.get(state.keys.model_card(view.version)) or "{}")
    return card


@router.get("/segments", responses={503: {"description": "no model"}})
async def segments(state: State) -> dict[str, Any]:
    """Size, share and mean recency / frequency / monetary per RFM segment."""
    view = await require_model(state)
    raw = await state.redis.get(state.keys.model_segment_summary(view.version))
    return {"model_version": view.version, "segments": json.loads(raw or "[]")}

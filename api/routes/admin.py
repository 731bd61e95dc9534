"""State-changing actions: each needs the API key (header X-API-Key)."""

from __future__ import annotations

import time

from fastapi import APIRouter

from api.deps import ApiKeyChecked, State
from api.schemas import RefitRequested
from api.services.model import request_refit

router = APIRouter(prefix="/admin", tags=["admin"])


@router.post("/refit", status_code=202, response_model=RefitRequested,
             responses={401: {"description": "no or wrong key"}, 403: {"description": "no key configured"}})
async def refit(state: State, _key: ApiKeyChecked) -> RefitRequested:
    """Ask the nightly scheduler (`recsys batch schedule`) to fit and publish a new model now."""
    requested_at = time.time()
    await request_refit(state, requested_at)
    return RefitRequested(accepted=True, requested_at=requested_at)

"""State-changing actions: each needs the API key (header X-API-Key)."""

from __future__ import annotations

import hmac
import time
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException

from api.deps import State
from api.schemas import RefitRequested

router = APIRouter(prefix="/admin", tags=["admin"])


def require_key(state: State, x_api_key: str | None) -> None:
    configured = state.settings.api_key
    if configured is None:
        raise HTTPException(403, "admin actions are disabled: set RECSYS_API_KEY to enable them")
    if x_api_key is None or not hmac.compare_digest(x_api_key.encode(), configured.get_secret_value().encode()):
        raise HTTPException(401, "missing or wrong X-API-Key header")


@router.post("/refit", status_code=202, response_model=RefitRequested,
             responses={401: {"description": "no or wrong key"}, 403: {"description": "no key configured"}})
async def refit(state: State, x_api_key: Annotated[str | None, Header()] = None) -> RefitRequested:
    """Ask the nightly scheduler (`recsys batch schedule`) to fit and publish a new model now."""
    require_key(state, x_api_key)
    requested_at = time.time()
    await state.redis.set(state.keys.batch_refit_requested(), requested_at)
    return RefitRequested(accepted=True, requested_at=requested_at)

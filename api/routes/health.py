from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.exceptions import RedisError

from api.deps import State

router = APIRouter(tags=["health"])


@router.get("/health")
async def health() -> dict[str, str]:
    """The process is alive (no dependencies checked)."""
    return {"status": "ok"}


@router.get("/ready", responses={503: {"description": "not ready"}})
async def ready(state: State) -> JSONResponse:
    """Redis answers and a model is published."""
    try:
        await state.redis.ping()
        current = await state.redis.get(state.keys.model_current())
    except (RedisError, OSError) as exc:
        return JSONResponse({"ready": False, "detail": f"Redis unreachable: {exc}"}, status_code=503)
    if current is None:
        return JSONResponse({"ready": False, "detail": "no model published"}, status_code=503)
    version = current.decode() if isinstance(current, bytes) else current
    return JSONResponse({"ready": True, "model_version": version})


@router.get("/metrics")
async def metrics(state: State) -> Response:
    """Prometheus text format: request counts and latency histograms per route, exposures sent and lost."""
    state.metrics.exposures_sent.set(state.exposures.sent)
    state.metrics.exposures_lost.set(state.exposures.lost)
    state.metrics.exposures_queued.set(state.exposures.queued)
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

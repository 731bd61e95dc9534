from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.exceptions import RedisError

from api.deps import State
from api.schemas import Health, NotReady, Ready

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health)
async def health() -> Health:
    """The process is alive (no dependencies checked)."""
    return Health()


@router.get("/ready", response_model=Ready, responses={503: {"model": NotReady, "description": "not ready"}})
async def ready(state: State) -> Ready | JSONResponse:
    """Redis answers and a model is published."""
    try:
        await state.redis.ping()
        current = await state.redis.get(state.keys.model_current())
    except (RedisError, OSError) as exc:
        return _not_ready(f"Redis unreachable: {exc}")
    if current is None:
        return _not_ready("no model published")
    return Ready(model_version=current.decode() if isinstance(current, bytes) else current)


def _not_ready(detail: str) -> JSONResponse:
    return JSONResponse(NotReady(detail=detail).model_dump(), status_code=503)


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(state: State) -> Response:
    """Prometheus text format: request counts and latency histograms per route, exposures sent and lost."""
    state.metrics.exposures_sent.set(state.exposures.sent)
    state.metrics.exposures_lost.set(state.exposures.lost)
    state.metrics.exposures_queued.set(state.exposures.queued)
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import State
from api.schemas import ExposureSender, Health, NotReady, Ready
from api.services.health import sender_state
from api.services.memory import redis_memory_if_up
from api.services.model import RedisUnreachable, current_version

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health)
async def health() -> Health:
    """The process is alive (no dependencies checked)."""
    return Health()


@router.get("/ready", response_model=Ready, responses={503: {"model": NotReady, "description": "not ready"}})
async def ready(state: State) -> Ready | JSONResponse:
    """Redis answers, a model is published and the exposure sender is running. A sender that is reconnecting to
    the broker is still ready (recommendations are served, exposures wait in its queue): its state is shown."""
    sender = sender_state(state)
    if not sender.running:
        return _not_ready("the exposure sender has stopped", sender)
    try:
        current = await current_version(state)
    except RedisUnreachable as exc:
        return _not_ready(f"Redis unreachable: {exc}", sender)
    if current is None:
        return _not_ready("no model published", sender)
    return Ready(model_version=current, exposures=sender)


def _not_ready(detail: str, sender: ExposureSender) -> JSONResponse:
    return JSONResponse(NotReady(detail=detail, exposures=sender).model_dump(), status_code=503)


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(state: State) -> Response:
    """Prometheus text format: request counts and latency histograms per route, the exposure sender (sent, lost,
    queued, connected, broker failures recovered from), Redis memory against its maxmemory."""
    sender = sender_state(state)
    m = state.metrics
    m.exposures_sent.set(sender.sent)
    m.exposures_lost.set(sender.lost)
    m.exposures_queued.set(sender.queued)
    m.exposures_connected.set(int(sender.connected))
    m.exposures_errors.set(sender.errors)
    memory = await redis_memory_if_up(state)
    if memory is not None:  # Redis away: the last reading stays, the request metrics still answer
        m.redis_used_memory.set(memory.used_bytes)
        m.redis_max_memory.set(memory.max_bytes or 0)
    return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)

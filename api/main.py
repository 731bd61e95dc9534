"""The FastAPI app: every answer comes from Redis; no model fitting or file reading in a request."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError

from api import problems
from api.metrics import Metrics, MetricsMiddleware, ReadKeyMiddleware
from api.recommend_lane import RecommendLane
from api.routes import ab, admin, customers, events, health, model, products, recommend, stream
from api.services.recommend import NoModelError
from api.state import ApiState, close_state, create_state
from common.collector import settle
from common.settings import Settings, get_settings

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = create_state(settings)
        app.state.api = state
        await state.exposures.start()
        await state.purchases.start()
        settle()  # the modules, the app and its clients leave the collector's generations (common.collector)
        try:
            yield
        finally:
            await state.purchases.stop()
            await state.exposures.stop()
            await close_state(state)

    # FastAPI's native OpenTelemetry off: the app exports its own metrics (/metrics), and with it on every request
    # asks the global providers (and the environment) whether anything is configured, ~2% of /recommend's CPU.
    app = FastAPI(title="recsys", version="1", lifespan=lifespan,
                  description="Product recommendations from Redis with an A/B split.",
                  telemetry={"tracing": False, "metrics": False, "logs": False})
    for module in (recommend, customers, products, model, ab, stream, health, admin, events):
        # The routers' routes as they are (each already carries its router's prefix, tags and responses) rather
        # than `include_router`: FastAPI 0.165 includes a router lazily and matches each request against it
        # twice (~4 us per request in benchmarks/hot_path_parts.py).
        app.router.routes.extend(module.router.routes)

    def current_metrics() -> Metrics:
        state: ApiState = app.state.api
        return state.metrics

    def current_state() -> ApiState:
        state: ApiState = app.state.api
        return state

    # Innermost of the layers, so requests it answers are still guarded and counted.
    app.add_middleware(RecommendLane, state=current_state, route=recommend.route_of("/recommend"))
    if settings.api_read_key is not None:  # inside the metrics layer, so refused requests are counted too
        keys = tuple(k.get_secret_value().encode() for k in (settings.api_read_key, settings.api_key) if k)
        app.add_middleware(ReadKeyMiddleware, keys=keys)
    app.add_middleware(MetricsMiddleware, metrics=current_metrics)

    @app.exception_handler(RedisError)
    async def redis_unavailable(_request: Request, exc: RedisError) -> JSONResponse:
        return JSONResponse(problems.redis_unavailable(exc), status_code=503)

    @app.exception_handler(NoModelError)
    async def no_model(_request: Request, exc: NoModelError) -> JSONResponse:
        return JSONResponse(problems.no_model(exc), status_code=503)

    return app

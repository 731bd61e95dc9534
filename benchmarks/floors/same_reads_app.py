"""The same-reads floor: the production app (`api.main.create_app`, its middleware and dependencies) with one more
route, mounted only here, that makes exactly the Redis reads `/recommend` makes, by calling the function
`/recommend` calls (`api.services.recommend.read_context`), and answers a constant body of the size of a
`/recommend` answer (the bare floor's, from `BARE_BODY_FILE`). What `/recommend` costs beyond it is ranking, the
exposure and building its body.

It also times the process's garbage collections (`/floor/gc`), so the benchmark can show the pauses behind the
tail; with `FLOOR_NO_GC_FREEZE=1` the app's `gc.freeze()` after start-up is skipped, to compare."""

from __future__ import annotations

import gc
import os
import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response

from api.deps import recommend_query, state_of
from api.main import create_app as create_production_app
from api.services.recommend import read_context
from benchmarks.floors.bare_app import BODY_FILE_ENV
from common.settings import Settings

PATH = "/floor/same-reads"
GC_PATH = "/floor/gc"
NO_GC_FREEZE_ENV = "FLOOR_NO_GC_FREEZE"


class CollectionTimes:
    """Count, total and longest pause per generation, from the collector's callbacks."""

    def __init__(self) -> None:
        self.started = 0.0
        self.by_generation: dict[int, dict[str, float]] = {}

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self.started = time.perf_counter()
            return
        ms = 1000 * (time.perf_counter() - self.started)
        seen = self.by_generation.setdefault(info["generation"], {"collections": 0, "total_ms": 0.0, "max_ms": 0.0})
        seen["collections"] += 1
        seen["total_ms"] += ms
        seen["max_ms"] = max(seen["max_ms"], ms)


COLLECTIONS = CollectionTimes()  # one per process, however many apps it builds


def create_app(settings: Settings | None = None) -> FastAPI:
    body = Path(os.environ[BODY_FILE_ENV]).read_bytes() if BODY_FILE_ENV in os.environ else b"{}"
    if os.environ.get(NO_GC_FREEZE_ENV) == "1":
        gc.freeze = lambda: None  # this benchmark process only: what the tail looks like without it
    if COLLECTIONS not in gc.callbacks:
        gc.callbacks.append(COLLECTIONS)

    async def same_reads(request: Request) -> Response:
        """`/recommend`'s query validated the same way, its reads, and a constant answer."""
        await read_context(state_of(request), recommend_query(request).customer_id)
        return Response(body, media_type="application/json")

    async def collection_times() -> dict[int, dict[str, float]]:
        return COLLECTIONS.by_generation

    app = create_production_app(settings)
    app.add_api_route(PATH, same_reads, methods=["GET"], include_in_schema=False)
    # Matched first: behind the production routes it would pay for matching them, which /recommend (the first
    # route) does not; in front, /recommend pays for one failed match instead.
    app.router.routes.insert(0, app.router.routes.pop())
    app.add_api_route(GC_PATH, collection_times, methods=["GET"], include_in_schema=False)
    return app

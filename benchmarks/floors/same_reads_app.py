"""The same-reads floor: the production app (`api.main.create_app`, its middleware and dependencies) with one more
route, mounted only here, that makes exactly the Redis reads `/recommend` makes, by calling the function
`/recommend` calls (`api.services.recommend.read_context`), and answers a constant body of the size of a
`/recommend` answer (the bare floor's, from `BARE_BODY_FILE`). What `/recommend` costs beyond it is ranking, the
exposure and building its body."""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI, Request, Response

from api.deps import CustomerIdQuery, TopK, state_of
from api.main import create_app as create_production_app
from api.services.recommend import read_context
from benchmarks.floors.bare_app import BODY_FILE_ENV
from common.settings import Settings

PATH = "/floor/same-reads"


def create_app(settings: Settings | None = None) -> FastAPI:
    body = Path(os.environ[BODY_FILE_ENV]).read_bytes() if BODY_FILE_ENV in os.environ else b"{}"

    async def same_reads(request: Request, customer_id: CustomerIdQuery, k: TopK = 5) -> Response:
        """`/recommend`'s signature (the same parameters validated), its reads, and a constant answer."""
        await read_context(state_of(request), customer_id)
        return Response(body, media_type="application/json")

    app = create_production_app(settings)
    app.add_api_route(PATH, same_reads, methods=["GET"], include_in_schema=False)
    # Matched first: behind the production routes it would pay for matching them, which /recommend (the first
    # route) does not; in front, /recommend pays for one failed match instead.
    app.router.routes.insert(0, app.router.routes.pop())
    return app

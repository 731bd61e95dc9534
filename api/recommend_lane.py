"""`GET /recommend`'s fast lane: a plain ASGI layer that answers the hot path itself."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qsl

import orjson
from pydantic import ValidationError
from redis.exceptions import RedisError
from starlette._utils import get_route_path  # the path Starlette routes by (without `--root-path`)
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from api.deps import recommend_query_of
from api.problems import no_model, redis_unavailable
from api.services.recommend import NoModelError, serve
from api.state import ApiState
from common.i18n import language_of


class RecommendLane:
    """Plain ASGI, the innermost of the app's layers: a `GET /recommend` whose query validates is answered here,
    past Starlette's routing and FastAPI's request handling: on Online Retail at c=32 (wrk, one worker) that took
    `/recommend` from 3.0-3.7k to 4.6-5.2k req/s. Anything else goes on to the app, so FastAPI answers a bad
    query's 422 and documents the route (`api.routes.recommend.recommend`, which answers the same)."""

    def __init__(self, app: ASGIApp, state: Callable[[], ApiState], route: BaseRoute) -> None:
        self.app = app
        self.state = state
        self.route = route  # the metrics label the request with it, as if routed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET" or get_route_path(scope) != "/recommend":
            await self.app(scope, receive, send)
            return
        try:
            # parsed as Starlette parses it (`request.query_params`)
            query = recommend_query_of(dict(parse_qsl(scope["query_string"].decode("latin-1"),
                                                      keep_blank_values=True)))
        except ValidationError:
            await self.app(scope, receive, send)
            return
        scope["route"] = self.route
        language = language_of(next((value.decode("latin-1") for name, value in scope["headers"]
                                     if name == b"accept-language"), None))
        status = 200
        try:
            body = orjson.dumps(await serve(self.state(), query.customer_id, query.k, language=language))
        except RedisError as exc:
            status, body = 503, orjson.dumps(redis_unavailable(exc))
        except NoModelError as exc:
            status, body = 503, orjson.dumps(no_model(exc))
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-length", str(len(body)).encode()), (b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})

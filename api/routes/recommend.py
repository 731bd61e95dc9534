from __future__ import annotations

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from api.deps import RECOMMEND_QUERY_OPENAPI, CustomerIdQuery, RequestLanguage, State, TopK, recommend_query, state_of
from api.schemas import Problem, Recommendation, RecommendationPreview
from api.services.recommend import preview, serve
from common.i18n import language_of

router = APIRouter(tags=["recommend"])


@router.get("/recommend", response_model=Recommendation, openapi_extra=RECOMMEND_QUERY_OPENAPI,
            responses={503: {"model": Problem, "description": "Redis unavailable or no model published"}})
async def recommend(request: Request) -> Response:
    """The customer's A/B group decides the strategy: treatment gets the model's list re-ranked with live
    state, control gets best-sellers. Every response is logged as an exposure. Each item's reason is in the
    language the request accepts (`Accept-Language`: Spanish or English), ready to show the customer."""
    # In the app, `api.recommend_lane` answers a request whose query validates before it gets here; this answers
    # the rest (422) and stands alone where the router is mounted without the lane; a dependency added here would
    # not run for the requests the lane answers. Like the lane, it takes the query and the state from the request
    # rather than through FastAPI's parameters and the `State` dependency (a tenth of the route's CPU;
    # benchmarks/hot_path_parts.py), and returns the body ready-made.
    query = recommend_query(request)
    language = language_of(request.headers.get("accept-language"))
    body = await serve(state_of(request), query.customer_id, query.k, language=language)
    return Response(orjson.dumps(body), media_type="application/json")


@router.get("/recommend/preview", response_model=RecommendationPreview,
            responses={503: {"model": Problem, "description": "Redis unavailable or no model published"}})
async def recommend_preview(state: State, customer_id: CustomerIdQuery, language: RequestLanguage,
                            k: TopK = 5) -> RecommendationPreview:
    """What each A/B group would show this customer, side by side, with reasons. Not logged as an exposure
    (for people looking, not for the experiment)."""
    return await preview(state, customer_id, k, language)


def route_of(path: str) -> BaseRoute:
    return next(route for route in router.routes if isinstance(route, APIRoute) and route.path == path)

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request, Response

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
    # The hot path: the query and the state are taken from the request, not through FastAPI's parameters and
    # the `State` dependency (its resolution cost a tenth of the route's CPU; benchmarks/hot_path_parts.py), and
    # the body is returned ready-made (FastAPI would otherwise validate it against the model again).
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

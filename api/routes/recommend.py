from __future__ import annotations

import orjson
from fastapi import APIRouter, Request, Response

from api.deps import CustomerIdQuery, RequestLanguage, State, TopK, state_of
from api.schemas import Problem, Recommendation, RecommendationPreview
from api.services.recommend import preview, serve
from common.i18n import language_of

router = APIRouter(tags=["recommend"])


@router.get("/recommend", response_model=Recommendation,
            responses={503: {"model": Problem, "description": "Redis unavailable or no model published"}})
async def recommend(request: Request, customer_id: CustomerIdQuery, k: TopK = 5) -> Response:
    """The customer's A/B group decides the strategy: treatment gets the model's list re-ranked with live
    state, control gets best-sellers. Every response is logged as an exposure. Each item's reason is in the
    language the request accepts (`Accept-Language`: Spanish or English), ready to show the customer."""
    # The hot path: the state is taken from the request, not through the `State` dependency (FastAPI resolving
    # a sub-dependency costs ~7 us a request, benchmarks/hot_path_parts.py), and the body is returned ready-made
    # (FastAPI would otherwise validate it against the model again).
    language = language_of(request.headers.get("accept-language"))
    body = await serve(state_of(request), customer_id, k, language=language)
    return Response(orjson.dumps(body), media_type="application/json")


@router.get("/recommend/preview", response_model=RecommendationPreview,
            responses={503: {"model": Problem, "description": "Redis unavailable or no model published"}})
async def recommend_preview(state: State, customer_id: CustomerIdQuery, language: RequestLanguage,
                            k: TopK = 5) -> RecommendationPreview:
    """What each A/B group would show this customer, side by side, with reasons. Not logged as an exposure
    (for people looking, not for the experiment)."""
    return await preview(state, customer_id, k, language)

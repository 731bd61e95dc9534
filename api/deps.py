"""Dependencies as Annotated aliases (one place to see what a route can use). Each is `async def`: a plain `def`
dependency would run in the threadpool on every request."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, ValidationError

from api.model_cache import ModelView
from api.services.recommend import NoModelError
from api.state import ApiState
from common.i18n import Language, language_of

ID_PATTERN = r"^[A-Za-z0-9_.\-]+$"


def state_of(request: Request) -> ApiState:
    state: ApiState = request.app.state.api
    return state


async def get_state(request: Request) -> ApiState:
    return state_of(request)


State = Annotated[ApiState, Depends(get_state)]


async def require_model(state: State) -> ModelView:
    """The published model; without one the request is answered 503 (the app's `NoModelError` handler)."""
    view = await state.models.get()
    if view is None:
        raise NoModelError
    return view


CurrentModel = Annotated[ModelView, Depends(require_model)]


async def accept_language(accept_language: Annotated[str | None, Header()] = None) -> Language:
    """The language of segment words and recommendation reasons: the best of en / es the header accepts."""
    return language_of(accept_language)


RequestLanguage = Annotated[Language, Depends(accept_language)]


async def require_api_key(state: State, x_api_key: Annotated[str | None, Header()] = None) -> None:
    """Every state-changing action: 403 when no key is configured, 401 when the X-API-Key header is not it."""
    configured = state.settings.api_key
    if configured is None:
        raise HTTPException(403, "this action is disabled: set RECSYS_API_KEY to enable it")
    if x_api_key is None or not hmac.compare_digest(x_api_key.encode(), configured.get_secret_value().encode()):
        raise HTTPException(401, "missing or wrong X-API-Key header")


ApiKeyChecked = Annotated[None, Depends(require_api_key)]
CUSTOMER_ID_DOC = "Customer id: letters, digits, '_', '.', '-'; 1..64 chars."
TOP_K_DOC = "How many products, 1..100."
CustomerIdQuery = Annotated[str, Query(min_length=1, max_length=64, pattern=ID_PATTERN, description=CUSTOMER_ID_DOC)]
CustomerIdPath = Annotated[str, Path(min_length=1, max_length=64, pattern=ID_PATTERN)]
ProductIdPath = Annotated[str, Path(min_length=1, max_length=64, pattern=ID_PATTERN)]
TopK = Annotated[int, Query(ge=1, le=100, description=TOP_K_DOC)]


class RecommendQuery(BaseModel):
    """`/recommend`'s query, validated in one step: FastAPI's own resolution of two query parameters was about a
    tenth of the route's CPU (py-spy, Online Retail, c=32), a pydantic model a few microseconds."""

    customer_id: str = Field(min_length=1, max_length=64, pattern=ID_PATTERN, description=CUSTOMER_ID_DOC)
    k: int = Field(default=5, ge=1, le=100, description=TOP_K_DOC)


_RECOMMEND_QUERY_SCHEMA = RecommendQuery.model_json_schema()
RECOMMEND_QUERY_OPENAPI = {"parameters": [
    {"name": name, "in": "query", "required": name in _RECOMMEND_QUERY_SCHEMA.get("required", []),
     "schema": schema, "description": schema.get("description")}
    for name, schema in _RECOMMEND_QUERY_SCHEMA["properties"].items()]}


def recommend_query_of(query: Mapping[str, str]) -> RecommendQuery:
    """The query's parameters, validated; raises pydantic's ValidationError."""
    return RecommendQuery.model_validate({name: query[name] for name in ("customer_id", "k") if name in query})


def recommend_query(request: Request) -> RecommendQuery:
    """The query, or a 422 shaped as FastAPI's own (`detail`: a list of errors, each with `loc` and `msg`)."""
    try:
        return recommend_query_of(request.query_params)
    except ValidationError as exc:
        raise RequestValidationError([
            {**error, "loc": ("query", *error["loc"]), **({"input": None} if error["type"] == "missing" else {})}
            for error in exc.errors(include_url=False)]) from None

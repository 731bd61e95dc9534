"""`/recommend` validates its query by hand (api.deps.recommend_query); it must answer and document exactly what
FastAPI's own query parameters would."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from api.deps import RECOMMEND_QUERY_OPENAPI, CustomerIdQuery, TopK, recommend_query


def _app() -> FastAPI:
    app = FastAPI()

    @app.get("/by-hand", openapi_extra=RECOMMEND_QUERY_OPENAPI)
    async def by_hand(request: Request) -> dict[str, Any]:
        query = recommend_query(request)
        return {"customer_id": query.customer_id, "k": query.k}

    @app.get("/by-fastapi")
    async def by_fastapi(customer_id: CustomerIdQuery, k: TopK = 5) -> dict[str, Any]:
        return {"customer_id": customer_id, "k": k}

    return app


@pytest.mark.parametrize("params", [
    {"customer_id": "c9", "k": "7"}, {"customer_id": "c.9-x_"}, {"customer_id": "has space"},
    {"customer_id": "x" * 65}, {"customer_id": ""}, {"customer_id": "c", "k": 0}, {"customer_id": "c", "k": 101},
    {"customer_id": "c", "k": "many"}, {"customer_id": "c", "k": "2.5"}, {}, {"k": 3},
])
def test_the_query_by_hand_answers_as_fastapis_parameters_do(params: dict[str, Any]) -> None:
    api = TestClient(_app())
    by_hand, by_fastapi = api.get("/by-hand", params=params), api.get("/by-fastapi", params=params)
    assert (by_hand.status_code, by_hand.json()) == (by_fastapi.status_code, by_fastapi.json())


def test_the_query_by_hand_is_documented_as_fastapis_parameters_are() -> None:
    paths = _app().openapi()["paths"]

    def parameters(path: str) -> list[dict[str, Any]]:
        return sorted(paths[path]["get"]["parameters"], key=lambda p: p["name"])

    assert parameters("/by-hand") == parameters("/by-fastapi")

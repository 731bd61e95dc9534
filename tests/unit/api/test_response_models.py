"""Every JSON answer of the API is a named pydantic model in the OpenAPI schema (the contract the UI and other
clients read), so a new endpoint cannot return an undescribed dict."""

from __future__ import annotations

from typing import Any

from api.main import create_app
from common.settings import Settings


def test_every_json_answer_declares_its_model() -> None:
    # The schema, not app.routes: FastAPI includes routers lazily, and the /bench floors are left out of it.
    schema = create_app(Settings(_env_file=None)).openapi()
    undeclared = [
        f"{method.upper()} {path} {status}"
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        for status, response in operation["responses"].items()
        if status.startswith("2") and not _named_model_or_not_json(response)
    ]
    assert {"/recommend", "/model", "/ab/timeline", "/ready"} <= set(schema["paths"])
    assert undeclared == []


def _named_model_or_not_json(response: dict[str, Any]) -> bool:
    body = response.get("content", {}).get("application/json")
    return body is None or "$ref" in body["schema"]

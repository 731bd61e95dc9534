"""A published model on the real local stack, and the API in front of it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from tests.integration.conftest import Published


@pytest.fixture
def api(published: Published) -> Iterator[TestClient]:
    with TestClient(create_app(published.settings)) as client:
        yield client

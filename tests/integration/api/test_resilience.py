"""Redis going away and coming back, with the API running; and no 5xx on any request the schema allows."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as settings_
from pydantic import SecretStr

from api.main import create_app
from stack.local import redis_binary, redis_is_healthy
from stack.scratch import free_port
from tests.integration.conftest import Published

pytestmark = pytest.mark.integration
KEY = "s3cret-for-tests-" + "x" * 32


def _start_redis(port: int, folder: Path) -> subprocess.Popen[bytes]:
    server = subprocess.Popen([redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no", "--dir", str(folder)], stdout=subprocess.DEVNULL)
    for _ in range(100):
        if redis_is_healthy("127.0.0.1", port):
            return server
        time.sleep(0.05)
    raise AssertionError("redis-server did not start")


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    port = free_port()
    yield port, tmp_path
    subprocess.run(["pkill", "-f", f"redis-server 127.0.0.1:{port}"], check=False)


def test_redis_down_is_503_and_the_api_recovers_by_itself(published: Published, own_redis: tuple[int, Path]) -> None:
    port, folder = own_redis
    settings = published.settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{port}/0",
                                                     "api_redis_timeout_s": 0.3})
    with TestClient(create_app(settings)) as api:
        down = api.get("/recommend", params={"customer_id": "c1"})
        assert down.status_code == 503 and "Redis unavailable" in down.json()["detail"]
        assert api.get("/customers/c1").status_code == 503
        assert api.get("/ready").status_code == 503
        assert api.get("/health").status_code == 200

        server = _start_redis(port, folder)
        try:
            ready = api.get("/ready")
            assert ready.status_code == 503 and ready.json()["detail"] == "no model published"
            assert api.get("/recommend", params={"customer_id": "c1"}).status_code == 503  # still no model
            server.terminate()
            server.wait()
            assert api.get("/stream/stats").status_code == 503
            server = _start_redis(port, folder)
            empty = api.get("/stream/stats").json()
            assert (empty["stats"], empty["latest"]) == ({}, []) and empty["memory"]["used_bytes"] > 0
        finally:
            server.terminate()
            server.wait()


def test_no_5xx_on_any_generated_request_keyed_routes_included(published: Published) -> None:
    """Contract fuzzing: every operation of the OpenAPI schema, with inputs generated from it, sent with the API
    key so the keyed POST routes are exercised past their key check (and, with a deeply nested body, past JSON)."""
    settings = published.settings.model_copy(update={"api_key": SecretStr(KEY)})
    with TestClient(create_app(settings)) as api:
        schema = schemathesis.openapi.from_asgi("/openapi.json", api.app)
        operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
        assert len(operations) >= 12
        assert {("POST", "/events/purchases"), ("POST", "/ab/experiments/{experiment}/stop")} <= {
            (o.method.upper(), o.path) for o in operations}
        for operation in operations:

            @settings_(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
            @given(case=operation.as_strategy())
            def call(case: schemathesis.Case) -> None:  # type: ignore[type-arg]
                response = case.call(headers={"X-API-Key": KEY})
                assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.text}"

            call()
        nested = api.post("/events/purchases", content=b"[" * 100_000 + b"]" * 100_000,
                          headers={"X-API-Key": KEY, "Content-Type": "application/json"})
        assert nested.status_code == 422 and "nested too deeply" in nested.text
    published.redis.delete(published.keys.batch_refit_requested())  # what the keyed fuzzing asked for


def test_a_broker_outage_never_fails_recommend_and_lost_exposures_are_counted(published: Published) -> None:
    settings = published.settings.model_copy(update={"broker_url": f"kafka://127.0.0.1:{free_port()}",
                                                     "api_exposure_queue_max": 3})
    with TestClient(create_app(settings)) as api:
        customers = published.lines["customer_id"].drop_duplicates().head(5)  # known: their exposures are logged
        for customer in customers:
            assert api.get("/recommend", params={"customer_id": customer}).status_code == 200
        metrics = api.get("/metrics").text
        assert "recsys_exposures_queued 3.0" in metrics
        assert "recsys_exposures_lost 2.0" in metrics
        assert api.get("/ab/summary").json()["exposures_lost"] == 2


def test_state_changing_actions_need_the_api_key(published: Published) -> None:
    keys = published.keys
    with TestClient(create_app(published.settings)) as api:
        disabled = api.post("/admin/refit")
        assert disabled.status_code == 403 and "RECSYS_API_KEY" in disabled.json()["detail"]
    settings = published.settings.model_copy(update={"api_key": SecretStr(KEY)})
    with TestClient(create_app(settings)) as api:
        assert api.post("/admin/refit").status_code == 401
        assert api.post("/admin/refit", headers={"X-API-Key": "wrong"}).status_code == 401
        assert published.redis.get(keys.batch_refit_requested()) is None
        accepted = api.post("/admin/refit", headers={"X-API-Key": KEY})
        assert accepted.status_code == 202
        assert float(str(published.redis.get(keys.batch_refit_requested()))) == accepted.json()["requested_at"]


def test_a_read_key_guards_every_route_but_the_health_checks(published: Published) -> None:
    read_key = "read-key-for-tests-" + "y" * 32
    customer = str(published.lines["customer_id"].iloc[0])
    settings = published.settings.model_copy(update={"api_key": SecretStr(KEY), "api_read_key": SecretStr(read_key)})
    with TestClient(create_app(settings)) as api:
        assert api.get("/health").status_code == 200 and api.get("/ready").status_code == 200
        for path in ("/recommend", f"/customers/{customer}", "/segments", "/metrics", "/openapi.json"):
            refused = api.get(path, params={"customer_id": customer})
            assert refused.status_code == 401 and "RECSYS_API_READ_KEY" in refused.json()["detail"], path
        def recommend(key: str) -> int:
            return api.get("/recommend", params={"customer_id": customer}, headers={"X-API-Key": key}).status_code

        assert recommend("wrong") == 401 and recommend(read_key) == 200 and recommend(KEY) == 200
        # The read key reads; it does not change state.
        assert api.post("/admin/refit", headers={"X-API-Key": read_key}).status_code == 401
        assert 'recsys_http_requests_total{method="GET",route="unmatched",status="401"}' in api.get(
            "/metrics", headers={"X-API-Key": read_key}).text

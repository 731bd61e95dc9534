from __future__ import annotations

import asyncio
import json
import time

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from api.recommend_lane import RecommendLane
from common import toplist
from common.assignment import group_of
from tests.integration.abkit import read_exposures
from tests.integration.conftest import Published

pytestmark = pytest.mark.integration


def _customers(published: Published, group: str) -> list[str]:
    s = published.settings
    ids = sorted(published.lines["customer_id"].unique())
    return [c for c in ids if group_of(s.ab_salt, c, s.ab_treatment_percent) == group]


def _model_list(published: Published, customer: str) -> list[dict[str, object]]:
    top = toplist.decode(str(published.redis.hget(published.keys.model_topn(published.version, customer), customer)))
    return [{"product_id": p, "score": s, "source": src} for p, s, src in
            zip(top.products, top.scores, top.sources, strict=True)]


def test_treatment_gets_the_published_list_with_reasons(api: TestClient, published: Published) -> None:
    customer = _customers(published, "treatment")[0]
    body = api.get("/recommend", params={"customer_id": customer, "k": 7}).json()
    assert (body["group"], body["strategy"], body["cold_start"]) == ("treatment", "model", False)
    assert body["model_version"] == published.version
    expected = [item["product_id"] for item in _model_list(published, customer)[:7]]
    assert [item["product_id"] for item in body["items"]] == expected
    assert all(item["reason"] and item["name"] for item in body["items"])


def test_control_gets_best_sellers(api: TestClient, published: Published) -> None:
    customer = _customers(published, "control")[0]
    body = api.get("/recommend", params={"customer_id": customer, "k": 5}).json()
    popular = json.loads(str(published.redis.get(published.keys.model_popular(published.version))))
    assert (body["group"], body["strategy"]) == ("control", "best_sellers")
    assert [i["product_id"] for i in body["items"]] == [p["product_id"] for p in popular[:5]]
    assert all(i["reason"].startswith("best-seller in the last") for i in body["items"])


def test_unknown_customer_gets_a_cold_start_list_said_so_and_nothing_is_logged(
    api: TestClient, published: Published
) -> None:
    publisher = api.app.state.api.exposures  # type: ignore[attr-defined]
    before = publisher.sent + publisher.queued
    body = api.get("/recommend", params={"customer_id": "never-seen-1", "k": 3}).json()
    assert body["cold_start"] is True and len(body["items"]) == 3
    assert body["strategy"] in ("cold_start", "best_sellers")
    known = api.get("/recommend", params={"customer_id": _customers(published, "control")[0]}).json()
    assert body["logged"] is False and known["logged"] is True
    deadline = time.monotonic() + 10
    while publisher.sent + publisher.queued < before + 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    assert publisher.sent + publisher.queued == before + 1  # the known customer's exposure only


def test_live_state_reranks_the_treatment_list(api: TestClient, published: Published) -> None:
    customer = _customers(published, "treatment")[1]
    model_list = _model_list(published, customer)
    listed_by_model = {str(item["product_id"]) for item in model_list}
    rules = {k: json.loads(v) for k, v in published.redis.hgetall(published.keys.model_rules(published.version))
             .items()}
    # a rule whose consequent the model did not list for this customer: only today's basket can bring it in
    antecedent, consequent = next((a, r["product_id"]) for a, rs in sorted(rules.items()) for r in rs
                                  if r["product_id"] not in listed_by_model and a != model_list[0]["product_id"])
    # After the model's data ends, the customer buys the model's first pick and the rule's antecedent.
    after = float(published.lines["event_time"].max().timestamp()) + 3600
    published.redis.zadd(published.keys.customer_recent(customer),
                         {str(model_list[0]["product_id"]): after, str(antecedent): after})

    items = api.get("/recommend", params={"customer_id": customer, "k": 100}).json()["items"]
    assert model_list[0]["product_id"] not in [i["product_id"] for i in items]
    fired = next(i for i in items if i["product_id"] == consequent)
    assert fired["source"] == "rules" and fired["reason"].startswith("often bought with")


@pytest.mark.parametrize("params", [
    {"customer_id": "has space"}, {"customer_id": "x" * 65}, {"customer_id": ""}, {"customer_id": "c", "k": 0},
    {"customer_id": "c", "k": 101}, {"customer_id": "c", "k": "many"}, {},
])
def test_bad_requests_are_422_with_a_message(api: TestClient, params: dict[str, str | int]) -> None:
    response = api.get("/recommend", params=params)
    assert response.status_code == 422
    assert response.json()["detail"][0]["msg"]


def test_every_served_list_is_an_exposure_event(api: TestClient, published: Published) -> None:
    publisher = api.app.state.api.exposures  # type: ignore[attr-defined]
    for _ in range(100):  # it connects in the background; until then exposures are counted as lost
        if publisher.producer is not None:
            break
        time.sleep(0.05)
    lost_before = publisher.lost
    known = _customers(published, "control")[:2] + _customers(published, "treatment")[:1]
    served = [api.get("/recommend", params={"customer_id": c, "k": 4}).json() for c in known]
    wanted = {body["request_id"] for body in served}  # other tests' exposures are on the topic too
    events = asyncio.run(read_exposures(published.settings, lambda found: wanted <= {e.request_id for e in found}))
    by_id = {e.request_id: e for e in events}
    for body in served:
        event = by_id[body["request_id"]]
        assert event.customer_id == body["customer_id"] and event.group == body["group"]
        assert event.product_ids == [i["product_id"] for i in body["items"]]
        assert event.model_version == published.version
    assert publisher.lost == lost_before


def test_the_lane_answers_as_the_route_does(published: Published) -> None:
    """`api.recommend_lane` answers `/recommend` before FastAPI routes it; the route itself (what answers where
    the lane is not installed) must give the same body, headers and status, for every arm and language. The
    lane's app has no `/recommend` route, so only the lane can answer there."""
    lane_app, route_app = create_app(published.settings), create_app(published.settings)
    lane_app.router.routes = [r for r in lane_app.router.routes if getattr(r, "path", None) != "/recommend"]
    route_app.user_middleware = [m for m in route_app.user_middleware
                                 if m.cls is not RecommendLane]  # type: ignore[comparison-overlap]
    customers = _customers(published, "treatment")[:3] + _customers(published, "control")[:3] + ["never-seen-2"]
    with TestClient(lane_app) as lane, TestClient(route_app) as routed:
        assert lane.get("/recommend", params={"customer_id": "x", "k": 0}).status_code == 404  # no route behind
        for customer in customers:
            for language in ("es", "en"):
                query: dict[str, str | int] = {"customer_id": customer, "k": 6}
                headers = {"Accept-Language": language}
                by_lane, by_route = lane.get("/recommend", params=query, headers=headers), routed.get(
                    "/recommend", params=query, headers=headers)
                assert by_lane.status_code == by_route.status_code == 200
                assert by_lane.headers == by_route.headers
                lane_body, route_body = by_lane.json(), by_route.json()
                assert lane_body.pop("request_id") != route_body.pop("request_id")
                assert lane_body == route_body

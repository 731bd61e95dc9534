from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from common import toplist
from tests.integration.conftest import Published

pytestmark = pytest.mark.integration


def test_customer_view(api: TestClient, published: Published) -> None:
    customer = str(published.lines["customer_id"].iloc[0])
    body = api.get(f"/customers/{customer}").json()
    expected = json.loads(str(published.redis.hget(published.keys.model_segments(published.version), customer)))
    assert body["segment"] == expected
    assert api.get("/customers/nobody-at-all").status_code == 404


def test_related_products_are_the_published_rules(api: TestClient, published: Published) -> None:
    rules = published.redis.hgetall(published.keys.model_rules(published.version))
    product, raw = next(iter(rules.items()))
    body = api.get(f"/products/{product!s}/related").json()
    assert [(r["product_id"], r["confidence"], r["lift"]) for r in body["rules"]] == [
        (r["product_id"], r["confidence"], r["lift"]) for r in json.loads(raw)]
    assert api.get("/products/no-such-product/related").status_code == 404


def test_model_segments_and_health(api: TestClient, published: Published) -> None:
    card = api.get("/model").json()
    assert card["version"] == published.version and card["data"]["lines"] == len(published.lines)
    segments = api.get("/segments").json()["segments"]
    assert sum(s["customers"] for s in segments) == published.lines["customer_id"].nunique()
    assert api.get("/health").json() == {"status": "ok"}
    assert api.get("/ready").json() == {"ready": True, "model_version": published.version}
    assert "stats" in api.get("/stream/stats").json()


def test_ab_summary_reads_the_group_counters(api: TestClient, published: Published) -> None:
    keys, experiment = published.keys, published.settings.ab_experiment
    published.redis.hset(keys.ab_group_counters(experiment, "control"), mapping={"exposures": 10})
    published.redis.sadd(keys.ab_exposed_customers(experiment, "control"), *[f"c{i}" for i in range(10)])
    published.redis.sadd(keys.ab_converted_customers(experiment, "control"), "c1")
    published.redis.sadd(keys.ab_exposed_customers(experiment, "treatment"), *[f"t{i}" for i in range(10)])
    published.redis.sadd(keys.ab_converted_customers(experiment, "treatment"), "t1", "t2", "t3")
    body = api.get("/ab/summary").json()
    assert body["groups"]["control"]["conversion_rate"] == pytest.approx(0.1)
    assert body["groups"]["treatment"]["conversion_rate"] == pytest.approx(0.3)
    assert body["absolute_uplift"] == pytest.approx(0.2)
    assert body["p_value"] is not None and 0 < body["p_value"] < 1


def test_metrics_count_requests_by_route(api: TestClient) -> None:
    for _ in range(3):
        api.get("/recommend", params={"customer_id": "m1"})
    text = api.get("/metrics").text
    assert 'recsys_http_requests_total{method="GET",route="/recommend",status="200"} 3.0' in text
    assert 'recsys_http_request_seconds_bucket{le="0.005",route="/recommend"}' in text


def test_preview_shows_both_groups_and_logs_no_exposure(api: TestClient, published: Published) -> None:
    publisher = api.app.state.api.exposures  # type: ignore[attr-defined]
    before = publisher.sent + publisher.lost + publisher.queued
    customer = str(published.lines["customer_id"].iloc[3])
    body = api.get("/recommend/preview", params={"customer_id": customer, "k": 4}).json()
    popular = json.loads(str(published.redis.get(published.keys.model_popular(published.version))))
    topn = toplist.decode(str(published.redis.hget(published.keys.model_topn(published.version), customer)))
    assert [i["product_id"] for i in body["groups"]["control"]["items"]] == [p["product_id"] for p in popular[:4]]
    assert [i["product_id"] for i in body["groups"]["treatment"]["items"]] == topn.products[:4]
    assert publisher.sent + publisher.lost + publisher.queued == before


def test_rules_are_filtered_and_sorted(api: TestClient) -> None:
    body = api.get("/rules", params={"sort": "confidence", "min_lift": 1.5, "limit": 20}).json()
    confidences = [r["confidence"] for r in body["rules"]]
    assert confidences == sorted(confidences, reverse=True) and len(confidences) == min(20, body["total"])
    assert all(r["lift"] >= 1.5 for r in body["rules"])
    assert api.get("/rules", params={"sort": "nonsense"}).status_code == 422


def test_versions_and_timeline(api: TestClient, published: Published) -> None:
    versions = api.get("/model/versions").json()["versions"]
    assert [v["version"] for v in versions if v["current"]] == [published.version]
    keys, experiment = published.keys, published.settings.ab_experiment
    published.redis.hset(keys.ab_daily(experiment, "treatment"),
                         mapping={"exposed:19000": 4, "converted:19000": 1, "exposed:19001": 6, "converted:19002": 2})
    series = api.get("/ab/timeline").json()["series"]["treatment"]
    assert [(r["date"], r["exposed"], r["converted"]) for r in series] == [
        ("2022-01-08", 4, 1), ("2022-01-09", 10, 1), ("2022-01-10", 10, 3)]
    assert series[-1]["rate"] == 0.3 and series[-1]["ci_low"] < 0.3 < series[-1]["ci_high"]


def test_customer_exposures_say_what_was_bought_after(api: TestClient, published: Published) -> None:
    keys, experiment = published.keys, published.settings.ab_experiment
    published.redis.zadd(keys.ab_customer_exposures(experiment, "x1"), {"p1|r1": 1000.0, "p2|r1": 1000.0})
    published.redis.zadd(keys.ab_customer_purchases(experiment, "x1"), {"p1|e1|500": 2000.0, "p2|e2|500": 10.0})
    shown = {r["product_id"]: r for r in api.get("/customers/x1/exposures").json()["shown"]}
    assert shown["p1"]["bought_at"] == 2000.0 and shown["p2"]["bought_at"] is None

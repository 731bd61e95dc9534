from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from common import toplist
from common.i18n import english
from common.segments import words
from tests.integration.conftest import Published

pytestmark = pytest.mark.integration


def test_customer_view(api: TestClient, published: Published) -> None:
    customer = str(published.lines["customer_id"].iloc[0])
    body = api.get(f"/customers/{customer}").json()
    segments = published.keys.model_segments(published.version, customer)
    expected = json.loads(str(published.redis.hget(segments, customer)))
    # the published row, with the segment's words (English: no Accept-Language) from the one segment table
    assert body["segment"] == expected | words(expected["segment"], english)
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
    ready = api.get("/ready").json()
    assert (ready["ready"], ready["model_version"]) == (True, published.version)
    assert ready["exposures"]["running"] is True and ready["exposures"]["errors"] == 0
    assert "stats" in api.get("/stream/stats").json()


def test_ab_summary_reads_the_group_counters(api: TestClient, published: Published) -> None:
    keys, experiment = published.keys, published.settings.ab_experiment
    published.redis.hset(keys.ab_group_counters(experiment, "control"),
                         mapping={"exposures": 10, "exposed_customers": 10, "converted_customers": 1})
    published.redis.hset(keys.ab_group_counters(experiment, "treatment"),
                         mapping={"exposed_customers": 10, "converted_customers": 3, "revenue_cents": 6000,
                                  "revenue_sq_cents2": 1000**2 + 2000**2 + 3000**2})
    body = api.get("/ab/summary").json()
    assert body["groups"]["control"]["conversion_rate"] == pytest.approx(0.1)
    assert body["groups"]["treatment"]["conversion_rate"] == pytest.approx(0.3)
    assert body["groups"]["treatment"]["revenue_per_exposed"] == pytest.approx(6.0)
    assert [a["name"] for a in body["arms"]] == ["control", "treatment"] and list(body["comparisons"]) == ["treatment"]
    assert body["comparison_alpha"] == body["alpha"]  # one comparison: nothing to correct
    conversion = body["comparisons"]["treatment"]["conversion"]
    assert conversion["difference"] == pytest.approx(0.2)
    fixed = conversion["fixed_horizon"]
    assert fixed["label"].startswith("fixed-horizon") and 0 < fixed["p_value"] < 1
    always = conversion["always_valid"]
    # 20 customers: the always-valid test is far more careful than the fixed one looked at once
    assert always["p_value"] > fixed["p_value"] and always["decision"] == "keep_running"
    assert always["ci_low"] < fixed["ci_low"] < fixed["ci_high"] < always["ci_high"]
    # treatment: 10, 20, 30 spent by 3 of 10 customers, control nothing
    revenue = body["comparisons"]["treatment"]["revenue_per_exposed"]
    assert revenue["treatment"] == pytest.approx(6.0) and revenue["control"] == 0
    # treatment's sample variance (1400 - 10 * 6^2) / 9 = 115.6: fixed-horizon z = 6 / sqrt(11.56) = 1.765, p = 0.078
    assert revenue["fixed_horizon"]["p_value"] == pytest.approx(0.0776, abs=1e-3)
    assert revenue["always_valid"]["p_value"] > revenue["fixed_horizon"]["p_value"]
    assert body["sample_ratio"]["chi_square"] == 0 and not body["sample_ratio"]["mismatch"]
    assert body["experiment"] == experiment and body["causal"] and not body["replayed"]


def test_experiments_are_listed_and_picked(api: TestClient, published: Published) -> None:
    keys = published.keys
    published.redis.zadd(keys.ab_experiments(), {"replay-2011-11-09": 1320796800.0,
                                                 published.settings.ab_experiment: 1767225600.0})
    published.redis.hset(keys.ab_group_counters("replay-2011-11-09", "control"), "exposed_customers", 900)
    published.redis.hset(keys.ab_group_counters("replay-2011-11-09", "treatment"), "exposed_customers", 700)
    listed = api.get("/ab/experiments").json()
    assert [e["name"] for e in listed["experiments"]] == [published.settings.ab_experiment, "replay-2011-11-09"]
    assert listed["experiments"][1] == {"name": "replay-2011-11-09", "started_at": "2011-11-09T00:00:00Z",
                                        "replayed": True, "live": False, "managed": False, "arms": [],
                                        "promoted": None, "exposed_customers": 1600, "state": "running",
                                        "ended_at": None}
    assert [(a["name"], a["serves"]) for a in listed["experiments"][0]["arms"]] == [
        ("control", "best_sellers"), ("treatment", "model:current")]
    body = api.get("/ab/summary", params={"experiment": "replay-2011-11-09"}).json()
    assert body["replayed"] and not body["causal"]
    # 900 vs 700 against 50/50: chi-square = 2 * 100^2 / 800 = 25, an alarm
    assert body["sample_ratio"]["chi_square"] == pytest.approx(25.0) and body["sample_ratio"]["mismatch"]
    assert api.get("/ab/timeline", params={"experiment": "replay-2011-11-09"}).json()["replayed"]
    assert api.get("/ab/summary", params={"experiment": "never-ran"}).status_code == 404
    bad = api.get("/ab/summary", params={"experiment": "no spaces"})
    assert bad.status_code == 422 and "experiment" in bad.text


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
    topn = toplist.decode(str(published.redis.hget(published.keys.model_topn(published.version, customer), customer)))
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
    published.redis.hset(keys.ab_daily(experiment, "control"), mapping={"exposed:19000": 5, "converted:19001": 1})
    timeline = api.get("/ab/timeline").json()
    series = timeline["series"]["treatment"]
    assert [(r["date"], r["exposed"], r["converted"]) for r in series] == [
        ("2022-01-08", 4, 1), ("2022-01-09", 10, 1), ("2022-01-10", 10, 3)]
    assert series[-1]["rate"] == 0.3 and series[-1]["ci_low"] < 0.3 < series[-1]["ci_high"]
    assert [(r["date"], r["exposed"], r["converted"]) for r in timeline["series"]["control"]] == [
        ("2022-01-08", 5, 0), ("2022-01-09", 5, 1)]
    # both groups' cumulative counts, day by day: 1/4 - 0/5, 1/10 - 1/5, 3/10 - 1/5
    uplift = timeline["uplift"]["treatment"]
    assert [r["date"] for r in uplift] == ["2022-01-08", "2022-01-09", "2022-01-10"]
    assert [r["difference"] for r in uplift] == pytest.approx([0.25, -0.1, 0.1])
    assert all(r["ci_low"] < r["difference"] < r["ci_high"] for r in uplift)


def test_customer_exposures_say_what_was_bought_after(api: TestClient, published: Published) -> None:
    keys, experiment = published.keys, published.settings.ab_experiment
    published.redis.zadd(keys.ab_experiments(), {experiment: 1000.0, "replay-1970-01-01": 500.0})
    published.redis.zadd(keys.ab_customer_exposures(experiment, "x1"), {"r1 p1 p2": 1000.0})
    # as the stream wrote exposures before (one member per product): still read
    published.redis.zadd(keys.ab_customer_exposures("replay-1970-01-01", "x1"), {"p3|r0": 500.0})
    published.redis.zadd(keys.ab_customer_purchases("x1"), {"p1|e1|500": 2000.0, "p2|e2|500": 10.0,
                                                            "p3|e3|100": 600.0})
    shown = {r["product_id"]: r for r in api.get("/customers/x1/exposures").json()["shown"]}
    assert shown["p1"]["bought_at"] == 2000.0 and shown["p2"]["bought_at"] is None
    assert shown["p3"]["bought_at"] == 600.0  # shown in the replayed experiment

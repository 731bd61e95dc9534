"""Experiments end and free what they held; their exposures stay bounded while they run (real Redis, the real
scripts, the API in front)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import cast

import pytest
import redis.asyncio as aioredis
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.main import create_app
from common.assignment import group_of
from common.events import ExposureEvent, PurchaseEvent
from stream_app.exposures import ExposureResult, ExposureWriter
from stream_app.state import StateWriter, Windows
from tests.integration.conftest import Published

pytestmark = pytest.mark.integration
KEY = "retention-test-key-" + "r" * 32
T0 = datetime(2024, 5, 1, tzinfo=UTC)


def _shown(experiment: str, customer: str, at: datetime, n: int) -> ExposureEvent:
    return ExposureEvent(request_id=f"{experiment}-{customer}-{n}", customer_id=customer, experiment=experiment,
                         group=group_of("s", customer, 50), strategy="model", model_version="v",
                         product_ids=["p1", "p2"], event_time=at)


def _bought(customer: str, at: datetime, n: int) -> PurchaseEvent:
    return PurchaseEvent(event_id=f"buy-{customer}-{n}", order_id=f"o-{customer}-{n}", customer_id=customer,
                         product_id="p1", category="k", units=1, amount=5.0, event_time=at)


async def _write(published: Published, exposures: list[ExposureEvent], purchases: list[PurchaseEvent],
                 windows: Windows = Windows()) -> ExposureResult:
    client = aioredis.from_url(published.settings.redis_url)
    try:
        shown = await ExposureWriter(client, published.keys, windows).apply(exposures)
        if purchases:
            await StateWriter(client, published.keys, windows).apply(purchases)
        return shown
    finally:
        await client.aclose()


def test_stopping_keeps_the_summary_frees_the_keys_and_ends_attribution(published: Published) -> None:
    keys, r = published.keys, published.redis
    experiment = "retain-stop"
    customers = [f"rs{i}" for i in range(20)]
    asyncio.run(_write(published, [_shown(experiment, c, T0, 0) for c in customers],
                       [_bought(c, T0 + timedelta(hours=1), 0) for c in customers[:8]]))
    assert r.exists(keys.ab_customer_exposures(experiment, customers[0]))
    settings = published.settings.model_copy(update={"api_key": SecretStr(KEY)})
    with TestClient(create_app(settings)) as api:
        assert api.post(f"/ab/experiments/{experiment}/stop").status_code == 401
        running = api.get("/ab/summary", params={"experiment": experiment}).json()
        stopped = api.post(f"/ab/experiments/{experiment}/stop", headers={"X-API-Key": KEY}).json()
        assert stopped["already_ended"] is False and stopped["freed_keys"] > len(customers)
        kept = stopped["summary"]
        assert kept["state"] == "ended" and kept["groups"] == running["groups"]
        assert sum(g["converted_customers"] for g in kept["groups"].values()) == 8
        # Nothing of the experiment is left but its kept record.
        assert list(r.scan_iter(match=keys.ab_experiment_pattern(experiment))) == []
        assert r.zscore(keys.ab_experiments(), experiment) is None
        assert api.get("/ab/summary", params={"experiment": experiment}).json()["groups"] == kept["groups"]
        listed = {e["name"]: e for e in api.get("/ab/experiments").json()["experiments"]}
        assert listed[experiment]["state"] == "ended" and listed[experiment]["exposed_customers"] == 20
        again = api.post(f"/ab/experiments/{experiment}/stop", headers={"X-API-Key": KEY}).json()
        assert again["already_ended"] is True and again["summary"] == kept
        assert api.post("/ab/experiments/never-ran/stop", headers={"X-API-Key": KEY}).status_code == 404

    # After the end: new exposures are dropped and counted, purchases are attributed to it no more.
    late = asyncio.run(_write(published, [_shown(experiment, "rs-new", T0 + timedelta(days=1), 0)],
                              [_bought(customers[9], T0 + timedelta(hours=2), 1)]))
    assert (late.applied, late.after_end) == (0, 1)
    assert list(r.scan_iter(match=keys.ab_experiment_pattern(experiment))) == []


def test_exposures_stay_bounded_while_an_experiment_runs(published: Published) -> None:
    keys, r = published.keys, published.redis
    experiment = "retain-bound"
    windows = Windows(guard_s=86400, attribution_s=2 * 86400)
    first = asyncio.run(_write(published, [_shown(experiment, "rb1", T0 + timedelta(days=d), d) for d in range(10)],
                               [], windows))
    assert first.applied == 10
    # The customer's guard keeps one day (the guard window) behind their newest exposure; their exposures three.
    guard = r.zrange(keys.ab_customer_requests(experiment, "rb1"), 0, -1)
    assert guard == [f"{experiment}-rb1-8", f"{experiment}-rb1-9"]
    oldest = cast(list[tuple[str, float]], r.zrange(keys.ab_customer_exposures(experiment, "rb1"), 0, 0,
                                                    withscores=True))
    assert oldest[0][1] == (T0 + timedelta(days=6)).timestamp()
    for key in (keys.ab_customer_exposures(experiment, "rb1"), keys.ab_customer_requests(experiment, "rb1")):
        assert 0 < r.ttl(key) <= windows.keep_s
    # An exposure older than the window behind the customer's newest is late: counted, not applied (a redelivery
    # could no longer be told apart). Another customer's is not: each customer's exposures arrive in order.
    late = asyncio.run(_write(published, [_shown(experiment, "rb1", T0 + timedelta(days=2), 99),
                                          _shown(experiment, "rb2", T0 + timedelta(days=2), 99)], [], windows))
    assert (late.applied, late.late) == (1, 1)
    assert int(r.hget(keys.stream_stats(), "exposures_late") or 0) >= 1

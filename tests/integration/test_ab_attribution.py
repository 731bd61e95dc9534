"""A/B conversions counted by the two Lua steps (exposures, purchases) on real Redis: the same counts as a
direct computation, whichever order the two topics arrive in, and however often they are redelivered, for two
experiments running over the same customers (a purchase counts in each experiment whose exposure preceded it)."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from collections.abc import Iterable
from datetime import timedelta
from typing import cast

import pytest
import redis.asyncio as aioredis

from common.events import ExposureEvent, PurchaseEvent
from stream_app.exposures import ExposureWriter
from stream_app.state import StateWriter, Windows
from tests.integration.abkit import (
    EXPERIMENTS,
    T0,
    ab_history,
    conversions,
    expected_conversions,
    expected_pre_period,
)
from tests.integration.conftest import Isolated

pytestmark = pytest.mark.integration

WINDOW = timedelta(days=7)
PRE = timedelta(days=10)  # CUPED's pre-period: most customers' first exposure has purchases before it
async def _apply(isolated: Isolated, steps: list[tuple[str, list[ExposureEvent] | list[PurchaseEvent]]]) -> None:
    client = aioredis.from_url(isolated.settings.redis_url)
    window_s = int(WINDOW.total_seconds())
    windows = Windows(attribution_s=window_s, pre_s=int(PRE.total_seconds()))
    purchases = StateWriter(client, isolated.keys, windows)
    exposures = ExposureWriter(client, isolated.keys, windows)
    try:
        for kind, batch in steps:
            if kind == "exposures":
                await exposures.apply(batch)  # type: ignore[arg-type]
            else:
                await purchases.apply(batch)  # type: ignore[arg-type]
    finally:
        await client.aclose()


def _pre_period_sums(isolated: Isolated, experiment: str) -> dict[str, dict[str, int]]:
    out = {}
    for group in ("control", "treatment"):
        counters = isolated.redis.hgetall(isolated.keys.ab_group_counters(experiment, group))
        out[group] = {field: int(float(counters.get(field, 0)))
                      for field in ("pre_cents", "pre_sq_cents2", "pre_conv_cents", "pre_rev_cents2")}
    return out


def _counted(isolated: Isolated, experiment: str) -> dict[str, dict[str, int]]:
    out = {}
    for group in ("control", "treatment"):
        counters = isolated.redis.hgetall(isolated.keys.ab_group_counters(experiment, group))
        out[group] = {"converted_items": int(counters.get("converted_items", 0)),
                      "revenue_cents": int(counters.get("revenue_cents", 0)),
                      "revenue_sq_cents2": int(float(counters.get("revenue_sq_cents2", 0))),
                      "customers": int(counters.get("converted_customers", 0))}
    return out


@pytest.mark.parametrize("order", ["exposures_first", "purchases_first", "shuffled_with_redelivery"])
def test_conversions_equal_a_direct_computation(isolated: Isolated, order: str) -> None:
    exposures, purchases = ab_history(seed=3)
    if order == "exposures_first":
        steps: list[tuple[str, list[ExposureEvent] | list[PurchaseEvent]]] = [
            ("exposures", exposures), ("purchases", purchases)]
    elif order == "purchases_first":
        steps = [("purchases", purchases), ("exposures", exposures)]
    else:
        rng = random.Random(9)
        rng.shuffle(exposures)
        rng.shuffle(purchases)
        chunks: list[tuple[str, list[ExposureEvent] | list[PurchaseEvent]]] = [
            ("exposures", exposures[i:i + 7]) for i in range(0, len(exposures), 7)]
        chunks += [("purchases", purchases[i:i + 7]) for i in range(0, len(purchases), 7)]
        rng.shuffle(chunks)
        steps = chunks + chunks[: len(chunks) // 2]  # half of it redelivered
    asyncio.run(_apply(isolated, steps))
    registry = dict(cast(list[tuple[str, float]],
                         isolated.redis.zrange(isolated.keys.ab_experiments(), 0, -1, withscores=True)))
    assert registry == {name: min(e.event_time.timestamp() for e in exposures if e.experiment == name)
                        for name in EXPERIMENTS}
    for experiment in EXPERIMENTS:
        _check_experiment(isolated, experiment, [e for e in exposures if e.experiment == experiment], purchases)


def _check_experiment(isolated: Isolated, experiment: str, exposures: list[ExposureEvent],
                      purchases: list[PurchaseEvent]) -> None:
    expected = expected_conversions(exposures, purchases, WINDOW)
    assert expected["control"]["converted_items"] > 0 and expected["treatment"]["converted_items"] > 0
    assert _counted(isolated, experiment) == expected, experiment
    pre_period = expected_pre_period(exposures, purchases, WINDOW, PRE)
    assert all(sums["pre_cents"] > 0 and sums["pre_rev_cents2"] > 0 for sums in pre_period.values())
    assert _pre_period_sums(isolated, experiment) == pre_period, experiment
    converted_at: dict[str, list[tuple[str, float]]] = {"control": [], "treatment": []}
    for group, purchase in conversions(exposures, purchases, WINDOW):
        converted_at[group].append((purchase.customer_id, purchase.event_time.timestamp()))
    exposed = isolated.redis.hgetall(isolated.keys.ab_group_counters(experiment, "treatment"))
    assert int(exposed["exposures"]) == sum(e.group == "treatment" for e in exposures)
    for group in ("control", "treatment"):  # the daily series counts each customer once, on the right day
        daily = {str(k): int(v) for k, v in isolated.redis.hgetall(isolated.keys.ab_daily(experiment, group)).items()
                 if int(v)}
        want_exposed = Counter(int(t // 86400) for t in _first(
            (e.customer_id, e.event_time.timestamp()) for e in exposures if e.group == group).values())
        want_converted = Counter(int(t // 86400) for t in _first(converted_at[group]).values())
        assert {k: v for k, v in daily.items() if k.startswith("exposed:")} == {
            f"exposed:{d}": n for d, n in want_exposed.items()}
        assert {k: v for k, v in daily.items() if k.startswith("converted:")} == {
            f"converted:{d}": n for d, n in want_converted.items()}


def _first(pairs: Iterable[tuple[str, float]]) -> dict[str, float]:
    earliest: dict[str, float] = {}
    for customer, ts in pairs:
        earliest[customer] = min(ts, earliest.get(customer, ts))
    return earliest


def test_a_customer_counts_in_the_arm_first_recorded_and_keeps_their_pre_period(isolated: Isolated) -> None:
    """An exposure in another arm than the one first recorded for the customer (a bandit re-weighted before the
    stream recorded them) counts in the first arm; a pre-period purchase that arrives after an exposure that
    showed nothing still enters the covariate."""
    def shown(request: str, group: str, day: int, products: list[str]) -> ExposureEvent:
        return ExposureEvent(request_id=request, customer_id="c1", experiment="x", group=group, strategy="model",
                             model_version="v", product_ids=products, event_time=T0 + timedelta(days=day))

    earlier = PurchaseEvent(event_id="e-pre", order_id="o-pre", customer_id="c1", product_id="p9", category="k",
                            units=1, amount=12.5, event_time=T0 + timedelta(days=5))
    asyncio.run(_apply(isolated, [("exposures", [shown("r1", "control", 8, [])]),
                                  ("exposures", [shown("r2", "treatment", 9, ["p1"])]),
                                  ("purchases", [earlier])]))
    keys, client = isolated.keys, isolated.redis
    control = client.hgetall(keys.ab_group_counters("x", "control"))
    assert int(control["exposures"]) == 2 and not client.exists(keys.ab_group_counters("x", "treatment"))
    assert int(control["exposed_customers"]) == 1
    assert client.hget(keys.ab_customer_state("x", "c1"), "group") == "control"
    assert int(client.hget(keys.stream_stats(), "exposures_crossed_arms") or 0) == 1
    assert int(control["pre_cents"]) == 1250 and int(float(control["pre_sq_cents2"])) == 1250 ** 2


def test_exposures_kept_one_member_per_product_as_before_still_convert(isolated: Isolated) -> None:
    """The stream keeps an exposure as one member, '<request id> <product> ...'; members written before as
    'product|request id' (one per product) are read too until they age out."""
    keys, client = isolated.keys, isolated.redis
    shown_at = (T0 + timedelta(days=1)).timestamp()
    asyncio.run(_apply(isolated, [("exposures", [ExposureEvent(
        request_id="r-new", customer_id="c1", experiment="x", group="treatment", strategy="model",
        model_version="v", product_ids=["p1", "p2"], event_time=T0 + timedelta(days=1))])]))
    assert client.zrange(keys.ab_customer_exposures("x", "c1"), 0, -1) == ["r-new p1 p2"]
    client.zadd(keys.ab_customer_exposures("x", "c1"), {"p3|r-old": shown_at})

    def bought(event: str, product: str) -> PurchaseEvent:
        return PurchaseEvent(event_id=event, order_id="o1", customer_id="c1", product_id=product, category="k",
                             units=1, amount=10.0, event_time=T0 + timedelta(days=2))

    asyncio.run(_apply(isolated, [("purchases", [bought("e2", "p2"), bought("e3", "p3"), bought("e4", "p4")])]))
    counters = client.hgetall(keys.ab_group_counters("x", "treatment"))
    assert (int(counters["converted_items"]), int(counters["revenue_cents"])) == (2, 2000)


def test_a_customers_exposures_of_a_full_list_stay_a_compact_set(isolated: Isolated) -> None:
    """An exposure of ten products is a member longer than Redis's default 64 bytes for a compact sorted set; the
    local stack raises that bound, so the customer's exposures stay a listpack instead of a ~1 KB skiplist."""
    products = [f"product-{i:04d}" for i in range(10)]
    asyncio.run(_apply(isolated, [("exposures", [ExposureEvent(
        request_id=uuid.uuid4().hex, customer_id="c1", experiment="x", group="treatment", strategy="model",
        model_version="v", product_ids=products, event_time=T0 + timedelta(days=1))])]))
    key = isolated.keys.ab_customer_exposures("x", "c1")
    (member,) = isolated.redis.zrange(key, 0, -1)
    assert len(member) > 64
    assert isolated.redis.object("encoding", key) in ("ziplist", "listpack")  # redis-server 6.2 / 7

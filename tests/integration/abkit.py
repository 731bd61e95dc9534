"""The A/B ground truth, computed directly from exposures and purchases."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pandas as pd
from aiokafka import AIOKafkaConsumer

from batch.publish import ModelBundle
from common import toplist
from common.assignment import group_of
from common.events import ExposureEvent, PurchaseEvent, exposure_payloads
from common.settings import Settings


def conversions(exposures: Sequence[ExposureEvent], purchases: Sequence[PurchaseEvent], window: timedelta
                ) -> list[tuple[str, PurchaseEvent]]:
    """(group, purchase) for every purchase line of a product shown to that customer within `window` before
    (`exposures` of one experiment)."""
    by_customer: dict[str, list[ExposureEvent]] = {}
    for e in exposures:
        by_customer.setdefault(e.customer_id, []).append(e)
    found: list[tuple[str, PurchaseEvent]] = []
    for p in purchases:
        shown = [e for e in by_customer.get(p.customer_id, []) if p.product_id in e.product_ids
                 and e.event_time <= p.event_time <= e.event_time + window]
        if shown:
            found.append((shown[0].group, p))
    return found


def expected_conversions(exposures: Sequence[ExposureEvent], purchases: Sequence[PurchaseEvent], window: timedelta
                         ) -> dict[str, dict[str, int]]:
    """Per group (`exposures` of one experiment): converting purchase lines, their revenue in cents, the sum over
    customers of their attributed revenue squared, and the distinct customers converted."""
    out = {g: {"converted_items": 0, "revenue_cents": 0, "revenue_sq_cents2": 0, "customers": 0}
           for g in ("control", "treatment")}
    per_customer: dict[str, dict[str, int]] = {"control": {}, "treatment": {}}
    for group, p in conversions(exposures, purchases, window):
        cents = round(p.amount * 100)
        out[group]["converted_items"] += 1
        out[group]["revenue_cents"] += cents
        per_customer[group][p.customer_id] = per_customer[group].get(p.customer_id, 0) + cents
    for g in out:
        out[g]["customers"] = len(per_customer[g])
        out[g]["revenue_sq_cents2"] = sum(r * r for r in per_customer[g].values())
    return out


def expected_pre_period(exposures: Sequence[ExposureEvent], purchases: Sequence[PurchaseEvent], window: timedelta,
                        pre: timedelta) -> dict[str, dict[str, int]]:
    """Per group, CUPED's sums over exposed customers: x = cents spent in `pre` before the customer's first
    exposure; the sums of x, x^2, x over converted customers and x times attributed revenue (cents)."""
    first: dict[str, tuple[str, float]] = {}
    for e in exposures:
        at = e.event_time.timestamp()
        if e.customer_id not in first or at < first[e.customer_id][1]:
            first[e.customer_id] = (e.group, at)
    revenue: dict[str, int] = {}
    for _, p in conversions(exposures, purchases, window):
        revenue[p.customer_id] = revenue.get(p.customer_id, 0) + round(p.amount * 100)
    out = {g: {"pre_cents": 0, "pre_sq_cents2": 0, "pre_conv_cents": 0, "pre_rev_cents2": 0}
           for g in ("control", "treatment")}
    for customer, (group, at) in first.items():
        x = sum(round(p.amount * 100) for p in purchases if p.customer_id == customer
                and at - pre.total_seconds() <= p.event_time.timestamp() < at)
        sums = out[group]
        sums["pre_cents"] += x
        sums["pre_sq_cents2"] += x * x
        sums["pre_conv_cents"] += x if customer in revenue else 0
        sums["pre_rev_cents2"] += x * revenue.get(customer, 0)
    return out



T0 = datetime(2024, 3, 1, tzinfo=UTC)
EXPERIMENT, SALT = "exp-t", "salt-t"
# A second experiment over the same customers, starting 10 days later and split differently.
SECOND, SECOND_SALT, SECOND_START = "exp-u", "salt-u", 10
EXPERIMENTS = {EXPERIMENT: (SALT, 0), SECOND: (SECOND_SALT, SECOND_START)}


def ab_history(seed: int) -> tuple[list[ExposureEvent], list[PurchaseEvent]]:
    """Two experiments over 40 customers: their exposures and purchases, drawn from `seed`."""
    rng = random.Random(seed)
    products = [f"p{i}" for i in range(12)]
    exposures, purchases = [], []
    for c in range(40):
        customer = f"c{c}"
        for experiment, (salt, start) in EXPERIMENTS.items():
            group = group_of(salt, customer, 50)
            for v in range(rng.randint(0 if experiment == SECOND else 1, 4)):
                at = T0 + timedelta(days=rng.randint(start, 30), hours=rng.randint(0, 23))
                exposures.append(ExposureEvent(
                    request_id=f"{experiment}-r{c}-{v}", customer_id=customer, experiment=experiment, group=group,
                    strategy="model", model_version="v", product_ids=rng.sample(products, 4), event_time=at))
        for n in range(rng.randint(0, 8)):
            purchases.append(PurchaseEvent(
                event_id=f"e{c}-{n}", order_id=f"o{c}-{n}", customer_id=customer, product_id=rng.choice(products),
                category="k", units=1, amount=float(rng.randint(1, 50)),
                event_time=T0 + timedelta(days=rng.randint(0, 40), hours=rng.randint(0, 23))))
    return exposures, purchases



TEST_KEY = "ab-test-key-" + "k" * 32
KEY = {"X-API-Key": TEST_KEY}


def model_bundle(version: str, first_product: int, customers: Sequence[str]) -> ModelBundle:
    """A version in which every customer's list is products first_product .. first_product + 4."""
    products = [f"p{first_product + j}" for j in range(5)]
    listed = toplist.encode([(p, 1.0 - j / 10, "repeat") for j, p in enumerate(products)])
    return ModelBundle(
        version=version, card={"version": version, "data_window": {"end": "2024-03-01T00:00:00"}},
        topn=dict.fromkeys(customers, listed), popular=[{"product_id": "p90", "buyers": 9}], rules={},
        category_rules=[], segments={}, segment_summary=[], products={p: {"name": p} for p in products})


def bought_first_shown(responses: dict[str, dict[str, Any]], arm: str) -> pd.DataFrame:
    """Each customer served in the arm buys the first product they were shown, now."""
    now = pd.Timestamp(datetime.now(UTC)).tz_localize(None)
    rows = [{"customer_id": c, "order_id": f"o-{c}", "line_no": 1, "product_id": r["items"][0]["product_id"],
             "category": "k", "units": 1, "amount": 10.0, "event_time": now}
            for c, r in responses.items() if r["group"] == arm]
    return pd.DataFrame(rows)


async def read_exposures(settings: Settings, enough: Callable[[list[ExposureEvent]], bool],
                         polls: int = 100) -> list[ExposureEvent]:
    """The exposures topic from the start, until `enough` says so (or `polls` empty-handed 200 ms polls)."""
    consumer = AIOKafkaConsumer(settings.topic_exposures, bootstrap_servers=settings.bootstrap_servers,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    found: list[ExposureEvent] = []
    try:
        for _ in range(polls):
            batches = await consumer.getmany(timeout_ms=200)
            found += [ExposureEvent.model_validate_json(raw) for rs in batches.values() for r in rs
                      for raw in cast(list[bytes], exposure_payloads(r.value, settings.max_event_bytes))]
            if enough(found):
                break
    finally:
        await consumer.stop()
    return found

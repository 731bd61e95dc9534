"""Properties of the RFM update as Redis applies it (the real Lua script, real Redis)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.events import PurchaseEvent
from common.keys import KeyLayout
from common.rfm import RfmState
from common.settings import Settings
from stream_app.state import StateWriter, to_cents

pytestmark = pytest.mark.integration

START = datetime(2023, 1, 1, tzinfo=UTC)

lines = st.lists(
    st.tuples(
        st.integers(0, 5),  # order number
        st.integers(0, 9),  # product
        st.integers(1, 20),  # units
        st.decimals(min_value="0.01", max_value="99999.99", places=2),  # amount
        st.integers(0, 365 * 24),  # hours after START
    ),
    min_size=1,
    max_size=25,
    unique_by=lambda t: (t[0], t[1]),
)


def _events(rows: list[tuple[int, int, int, object, int]]) -> list[PurchaseEvent]:
    return [
        PurchaseEvent(
            event_id=f"e{order}-{product}", order_id=f"o{order}", customer_id="c", product_id=f"p{product}",
            category="k", units=units, amount=float(str(amount)), event_time=START + timedelta(hours=hours),
        )
        for order, product, units, amount, hours in rows
    ]


async def _apply(redis_url: str, batches: list[list[PurchaseEvent]]) -> tuple[RfmState, dict[str, str]]:
    client = aioredis.from_url(redis_url, decode_responses=True)
    keys = KeyLayout(f"p{uuid.uuid4().hex[:12]}")
    writer = StateWriter(client, keys)
    try:
        for batch in batches:
            await writer.apply(batch)
        rfm: dict[str, str] = await client.hgetall(keys.customer_rfm("c"))  # type: ignore[assignment]
        state = RfmState.from_hash(rfm)
        product_units: dict[str, str] = await client.hgetall(keys.customer_product_units("c"))  # type: ignore[assignment]
        async for key in client.scan_iter(match=f"{keys.prefix}:*"):
            await client.delete(key)
        return state, product_units
    finally:
        await client.aclose()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=lines, seed=st.randoms(use_true_random=False), split=st.integers(1, 24))
def test_rfm_is_order_independent_and_sums_exactly(
    stack: Settings, rows: list[tuple[int, int, int, object, int]], seed: object, split: int
) -> None:
    events = _events(rows)
    shuffled = list(events)
    seed.shuffle(shuffled)  # type: ignore[attr-defined]
    in_order, _ = asyncio.run(_apply(stack.redis_url, [events]))
    any_order, units_any = asyncio.run(_apply(stack.redis_url, [shuffled[:split], shuffled[split:]]))

    assert in_order == any_order
    assert any_order.monetary_cents == sum(to_cents(e.amount) for e in events)
    assert any_order.orders == len({e.order_id for e in events})
    assert any_order.lines == len(events)
    assert any_order.last_ts == max(int(e.event_time.timestamp()) for e in events)
    assert any_order.first_ts == min(int(e.event_time.timestamp()) for e in events)
    assert sum(int(u) for u in units_any.values()) == sum(e.units for e in events)
    assert any_order.recency_days(any_order.last_ts) == 0
    for event in events:
        assert any_order.recency_days(int(event.event_time.timestamp())) >= 0


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=lines)
def test_applying_twice_equals_applying_once(stack: Settings, rows: list[tuple[int, int, int, object, int]]) -> None:
    events = _events(rows)
    once, _ = asyncio.run(_apply(stack.redis_url, [events]))
    twice, _ = asyncio.run(_apply(stack.redis_url, [events, events[::-1]]))
    assert once == twice

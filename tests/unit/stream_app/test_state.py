import json
import re
from datetime import UTC, datetime

import pytest

from common.events import ExposureEvent, PurchaseEvent
from common.keys import KeyLayout
from stream_app.exposures import exposure_row
from stream_app.lua import EXPOSURE_FIELDS, PURCHASE_FIELDS, lua_source
from stream_app.state import GLOBAL_KEYS, HEADER_ARGS, KEYS_PER_CUSTOMER, batch_call, to_cents


def _event(i: int, customer: str = "c1") -> PurchaseEvent:
    return PurchaseEvent(
        event_id=f"e{i}", order_id="o1", customer_id=customer, product_id=f"p{i}", category="k", units=2,
        amount=10.05, event_time=datetime(2023, 1, 2, 3, 4, 5, tzinfo=UTC),
    )


def test_batch_call_groups_events_by_customer() -> None:
    keys = KeyLayout("t")
    events = [_event(1), _event(2, "c2"), _event(3)]
    call_keys, args = batch_call(keys, events, ["d1"], recent_n=5, retention_s=99, latest_n=7, experiment="x",
                                 attribution_s=600)
    assert len(call_keys) == GLOBAL_KEYS + 1 + 2 * KEYS_PER_CUSTOMER  # one day key, two customers
    assert call_keys[GLOBAL_KEYS] == keys.product_popularity_day("20230102")
    assert call_keys[GLOBAL_KEYS + 1] == keys.customer_rfm("c1")
    assert call_keys[GLOBAL_KEYS + 1 + KEYS_PER_CUSTOMER] == keys.customer_rfm("c2")
    assert call_keys[GLOBAL_KEYS + KEYS_PER_CUSTOMER - 2: GLOBAL_KEYS + KEYS_PER_CUSTOMER + 1] == [
        keys.ab_customer_exposures("x", "c1"), keys.ab_customer_purchases("x", "c1"),
        keys.ab_customer_converted("x", "c1")]
    assert args[:HEADER_ARGS + 1] == [GLOBAL_KEYS, KEYS_PER_CUSTOMER, 2, 1, 5, 99, 7, 600, 1, "d1"]
    assert len(args) == HEADER_ARGS + 2
    payload = json.loads(str(args[-1]))
    assert [cid for cid, _ in payload] == ["c1", "c2"]
    first = dict(zip(PURCHASE_FIELDS, payload[0][1][0], strict=True))
    assert first | {"latest": ""} == {"event_id": "e1", "order_id": "o1", "product_id": "p1", "category": "k",
                                      "units": 2, "cents": 1005, "ts": 1672628645, "day": 1, "latest": ""}
    assert json.loads(first["latest"])["product_id"] == "p1"
    assert [row[0] for row in payload[0][1]] == ["e1", "e3"]


def test_exposure_rows_follow_the_field_table() -> None:
    exposure = ExposureEvent(request_id="r1", customer_id="c1", experiment="x", group="treatment", strategy="model",
                             model_version="v1", product_ids=["p1", "p2"],
                             event_time=datetime(2023, 1, 2, tzinfo=UTC))
    assert dict(zip(EXPOSURE_FIELDS, exposure_row(exposure), strict=True)) == {
        "request_id": "r1", "customer_id": "c1", "group": "treatment", "ts": 1672617600,
        "product_ids": ["p1", "p2"]}


@pytest.mark.parametrize(("table", "fields"), [("P", PURCHASE_FIELDS), ("X", EXPOSURE_FIELDS)])
def test_scripts_read_only_fields_the_table_names(table: str, fields: tuple[str, ...]) -> None:
    """A misspelt field would read as nil inside Redis; every `P.name` / `X.name` in the Lua must exist."""
    used = set()
    for name in ("count_first", "attribution", "apply_purchases", "apply_exposures"):
        used |= set(re.findall(rf"\b{table}\.([a-z_]+)", lua_source(name)))
    assert used and used <= set(fields), used - set(fields)


def test_cents_are_exact() -> None:
    assert to_cents(0.1) + to_cents(0.2) == 30
    assert to_cents(15.30) == 1530
    assert to_cents(20952000.0) == 2_095_200_000

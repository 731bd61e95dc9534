import json
import re
from datetime import UTC, datetime

import pytest

from common.events import ExposureEvent, PurchaseEvent
from common.keys import KeyLayout
from common.settings import Settings
from stream_app.exposures import EXPOSURE_GLOBAL_KEYS, exposure_row, exposures_call
from stream_app.lua import (
    AB_KEYS_PER_ARM,
    APPLY_PURCHASES,
    EXPOSURE_FIELDS,
    EXPOSURE_KEYS,
    PURCHASE_FIELDS,
    ab_keys,
    lua_source,
)
from stream_app.state import CUSTOMER_KEYS, HEADER_ARGS, STREAM_KEYS, Registry, Windows, batch_call, to_cents


def _event(i: int, customer: str = "c1") -> PurchaseEvent:
    return PurchaseEvent(
        event_id=f"e{i}", order_id="o1", customer_id=customer, product_id=f"p{i}", category="k", units=2,
        amount=10.05, event_time=datetime(2023, 1, 2, 3, 4, 5, tzinfo=UTC),
    )


WINDOWS = Windows(guard_s=99, attribution_s=600, dead_letter_keep_s=30, pre_s=50)
TWO = ("control", "treatment")
SHARED_KEYS = 4  # the customers' arms, revenue, pre-period spend and propensity
TWO_ARMS_KEYS = SHARED_KEYS + 2 * AB_KEYS_PER_ARM


def test_batch_call_groups_events_by_customer() -> None:
    keys = KeyLayout("t")
    events = [_event(1), _event(2, "c2"), _event(3)]
    call_keys, args = batch_call(keys, events, ["d1"], recent_n=5, latest_n=7, windows=WINDOWS,
                                 registry=Registry(("x",), "4", (TWO,)), now=1000)
    global_keys, per_customer = STREAM_KEYS + TWO_ARMS_KEYS, CUSTOMER_KEYS + 2
    assert len(call_keys) == global_keys + 2 * per_customer  # two customers
    assert call_keys[STREAM_KEYS - 2:STREAM_KEYS] == [keys.ab_experiments(), keys.ab_experiments_revision()]
    assert call_keys[STREAM_KEYS:global_keys] == ab_keys(keys, "x", TWO)
    assert call_keys[global_keys] == keys.customer_rfm("c1")
    assert call_keys[global_keys + per_customer] == keys.customer_rfm("c2")
    assert call_keys[global_keys + per_customer - 3: global_keys + per_customer] == [
        keys.ab_customer_purchases("c1"), keys.ab_customer_exposures("x", "c1"),
        keys.ab_customer_converted("x", "c1")]
    # G, C, customers, recent_n, guard, latest_n, attribution, dead ids, experiments, keep, now, dead keep, revision,
    # arms
    assert args[:HEADER_ARGS + 1] == [global_keys, per_customer, 2, 5, 99, 7, 600, 1, 1, 699, 1000, 30, "4",
                                      '[["control", "treatment"]]', 50, "d1"]
    assert len(args) == HEADER_ARGS + 2
    payload = json.loads(str(args[-1]))
    assert [cid for cid, _ in payload] == ["c1", "c2"]
    first = dict(zip(PURCHASE_FIELDS, payload[0][1][0], strict=True))
    assert first | {"latest": ""} == {"event_id": "e1", "order_id": "o1", "product_id": "p1", "category": "k",
                                      "units": 2, "cents": 1005, "ts": 1672628645, "latest": ""}
    assert json.loads(first["latest"])["product_id"] == "p1"
    assert [row[0] for row in payload[0][1]] == ["e1", "e3"]


def test_batch_call_names_every_experiments_keys() -> None:
    keys = KeyLayout("t")
    call_keys, args = batch_call(keys, [_event(1)], [], recent_n=5, latest_n=7, windows=WINDOWS,
                                 registry=Registry(("a", "b"), "2", (TWO, ("x", "y", "z"))), now=0)
    global_keys = STREAM_KEYS + TWO_ARMS_KEYS + SHARED_KEYS + 3 * AB_KEYS_PER_ARM
    assert args[:2] == [global_keys, CUSTOMER_KEYS + 4] and args[8] == 2
    assert json.loads(str(args[HEADER_ARGS - 2])) == [list(TWO), ["x", "y", "z"]]
    assert call_keys[STREAM_KEYS:global_keys] == ab_keys(keys, "a", TWO) + ab_keys(keys, "b", ("x", "y", "z"))
    assert keys.ab_first_times("b", "z") == call_keys[global_keys - 1]
    assert call_keys[-4:] == [keys.ab_customer_exposures("a", "c1"), keys.ab_customer_converted("a", "c1"),
                              keys.ab_customer_exposures("b", "c1"), keys.ab_customer_converted("b", "c1")]
    _, none = batch_call(keys, [_event(1)], [], recent_n=5, latest_n=7, windows=WINDOWS, registry=Registry(), now=0)
    assert none[:2] == [STREAM_KEYS, CUSTOMER_KEYS]


def test_exposures_call_registers_the_experiment() -> None:
    keys = KeyLayout("t")
    shown = ExposureEvent(request_id="r1", customer_id="c1", experiment="x", group="treatment", strategy="model",
                          model_version="v1", product_ids=["p1"], event_time=datetime(2023, 1, 2, tzinfo=UTC))
    call_keys, args = exposures_call(keys, "x", TWO, [shown], WINDOWS)
    assert call_keys[:EXPOSURE_GLOBAL_KEYS] == [keys.ab_experiments(), keys.ab_experiments_revision(),
                                                keys.ab_ended(), keys.stream_stats()]
    shared_end = EXPOSURE_GLOBAL_KEYS + TWO_ARMS_KEYS
    assert call_keys[EXPOSURE_GLOBAL_KEYS:shared_end] == ab_keys(keys, "x", TWO)
    assert call_keys[shared_end:] == [
        keys.ab_customer_exposures("x", "c1"), keys.ab_customer_purchases("c1"), keys.ab_customer_converted("x", "c1"),
        keys.ab_customer_requests("x", "c1")]
    assert args[:6] == [shared_end, EXPOSURE_KEYS, 99, 600, "x", 699]
    assert json.loads(str(args[-2])) == list(TWO) and args[-1] == 50


def test_the_script_lays_out_an_experiments_keys_as_python_does() -> None:
    keys = KeyLayout("t")
    assert ab_keys(keys, "x", ("a", "b"))[:SHARED_KEYS] == [keys.ab_customer_groups("x"), keys.ab_customer_revenue("x"),
                                                            keys.ab_customer_pre("x"), keys.ab_customer_propensity("x")]
    assert ab_keys(keys, "x", ("a", "b"))[SHARED_KEYS + AB_KEYS_PER_ARM:] == [
        keys.ab_group_counters("x", "b"), keys.ab_exposed_customers("x", "b"), keys.ab_converted_customers("x", "b"),
        keys.ab_daily("x", "b"), keys.ab_first_times("x", "b")]
    assert f"local AB_KEYS_PER_ARM = {AB_KEYS_PER_ARM}\n" in APPLY_PURCHASES
    attribution = lua_source("attribution")
    assert "ab.counters[arm], ab.exposed[arm], ab.converted[arm] = KEYS[k], KEYS[k + 1], KEYS[k + 2]" in attribution
    assert "ab.daily[arm], ab.first[arm] = KEYS[k + 3], KEYS[k + 4]" in attribution


def test_exposure_rows_follow_the_field_table() -> None:
    exposure = ExposureEvent(request_id="r1", customer_id="c1", experiment="x", group="treatment", strategy="model",
                             model_version="v1", product_ids=["p1", "p2"],
                             event_time=datetime(2023, 1, 2, tzinfo=UTC))
    assert dict(zip(EXPOSURE_FIELDS, exposure_row(exposure), strict=True)) == {
        "request_id": "r1", "customer_id": "c1", "group": "treatment", "ts": 1672617600,
        "product_ids": ["p1", "p2"], "propensity": 0}
    assert exposure_row(exposure.model_copy(update={"propensity": 0.25}))[-1] == 0.25


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


def test_windows_follow_the_settings() -> None:
    windows = Windows.of(Settings(ab_attribution_days=2, guard_retention_days=30,
                                  dead_letter_keep_days=1, ab_cuped_pre_days=14))
    assert windows == Windows(guard_s=30 * 86400, attribution_s=2 * 86400,
                              dead_letter_keep_s=86400, pre_s=14 * 86400)
    assert windows.keep_s == 32 * 86400

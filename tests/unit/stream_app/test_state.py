import json
import re
from datetime import UTC, datetime

import pytest

from common.events import ExposureEvent, PurchaseEvent
from common.keys import KeyLayout
from common.settings import Settings
from stream_app.exposures import exposure_row, exposures_call
from stream_app.lua import APPLY_PURCHASES, APPLY_SHARED, EXPOSURE_FIELDS, PURCHASE_FIELDS, lua_source
from stream_app.shared import (
    ENTRIES_PER_CALL,
    RELEASED_KEEP_S,
    Entry,
    entries_of,
    shared_calls,
    shared_keys,
)
from stream_app.state import CUSTOMER_KEYS, HEADER_ARGS, Windows, customer_call, rows_by_customer, to_cents
from tests.unit.common.test_keys_and_settings import hash_tag

SHARED_KEYS = 10


def _event(i: int, customer: str = "c1") -> PurchaseEvent:
    return PurchaseEvent(
        event_id=f"e{i}", order_id="o1", customer_id=customer, product_id=f"p{i}", category="k", units=2,
        amount=10.05, event_time=datetime(2023, 1, 2, 3, 4, 5, tzinfo=UTC),
    )


WINDOWS = Windows(guard_s=99, attribution_s=600, dead_letter_keep_s=30, pre_s=50)
TWO = ("control", "treatment")
KEYS = KeyLayout("t")


def test_a_customers_call_names_only_keys_of_their_slot() -> None:
    rows = rows_by_customer([_event(1)], latest_n=7)["c1"]
    call_keys, args = customer_call(KEYS, "c1", rows, ["a", "b"], recent_n=5, windows=WINDOWS)
    assert len(call_keys) == CUSTOMER_KEYS + 2 * 3
    assert {hash_tag(key) for key in call_keys} == {"c1"}
    assert call_keys[:CUSTOMER_KEYS] == [
        KEYS.customer_rfm("c1"), KEYS.customer_orders("c1"), KEYS.customer_product_units("c1"),
        KEYS.customer_product_amount("c1"), KEYS.customer_recent("c1"), KEYS.customer_categories("c1"),
        KEYS.customer_applied("c1"), KEYS.ab_customer_purchases("c1"), KEYS.customer_outbox("c1"),
        KEYS.ab_customer_experiments("c1")]
    assert call_keys[-3:] == [KEYS.ab_customer_state("b", "c1"), KEYS.ab_customer_exposures("b", "c1"),
                              KEYS.ab_customer_converted("b", "c1")]
    # customer, recent_n, guard, attribution, keep, pre, experiments, their names, the rows
    assert args[:HEADER_ARGS + 2] == ["c1", 5, 99, 600, 699, 50, 2, "a", "b"]
    assert len(args) == HEADER_ARGS + 3
    first = dict(zip(PURCHASE_FIELDS, json.loads(str(args[-1]))[0], strict=True))
    assert first | {"latest": ""} == {"event_id": "e1", "order_id": "o1", "product_id": "p1", "category": "k",
                                      "units": 2, "cents": 1005, "ts": 1672628645, "latest": ""}
    assert json.loads(first["latest"])["product_id"] == "p1"


def test_rows_are_grouped_by_customer_and_only_the_newest_carry_their_json() -> None:
    rows = rows_by_customer([_event(1), _event(2, "c2"), _event(3)], latest_n=2)
    assert list(rows) == ["c1", "c2"]
    assert [row[0] for row in rows["c1"]] == ["e1", "e3"]
    assert [row[-1] == "" for row in rows["c1"]] == [True, False]
    assert rows["c2"][0][-1] != ""


def test_an_exposures_call_names_only_keys_of_the_customers_slot() -> None:
    shown = ExposureEvent(request_id="r1", customer_id="c1", experiment="x", group="treatment", strategy="model",
                          model_version="v1", product_ids=["p1"], event_time=datetime(2023, 1, 2, tzinfo=UTC))
    call_keys, args = exposures_call(KEYS, "x", "c1", TWO, [shown], WINDOWS)
    assert {hash_tag(key) for key in call_keys} == {"c1"}
    assert call_keys == [KEYS.ab_customer_state("x", "c1"), KEYS.ab_customer_exposures("x", "c1"),
                         KEYS.ab_customer_purchases("c1"), KEYS.ab_customer_converted("x", "c1"),
                         KEYS.ab_customer_requests("x", "c1"), KEYS.ab_customer_experiments("c1"),
                         KEYS.customer_outbox("c1")]
    assert args[:6] == ["c1", "x", 99, 600, 699, 50]
    assert json.loads(str(args[6])) == list(TWO)
    assert json.loads(str(args[7]))[0][0] == "r1"


def test_the_shared_call_names_only_shared_keys_and_every_arm_its_entries_change() -> None:
    owed = {"pop": {}, "cat": {}, "n": {}, "latest": {}, "start": [],
            "ab": [["x", "control", "exposures", "1"]], "daily": [["y", "b", "exposed:1", 1]]}
    entries = [Entry("c1", "p:e1", json.dumps(owed)), Entry("c2", "p:e2", json.dumps(owed | {"ab": []}))]
    [(call_keys, args)] = shared_calls(KEYS, entries, ["d1"], {"late": 2}, dead_letter_keep_s=30, latest_n=7)
    assert {hash_tag(key) for key in call_keys} == {"shared"}
    assert len(call_keys) == SHARED_KEYS + 2 * 2
    assert call_keys[:SHARED_KEYS] == shared_keys(KEYS)
    assert call_keys[SHARED_KEYS:] == [KEYS.ab_group_counters("x", "control"), KEYS.ab_daily("x", "control"),
                                       KEYS.ab_group_counters("y", "b"), KEYS.ab_daily("y", "b")]
    assert args[:3] == [30, 7, RELEASED_KEEP_S] and args[5:7] == [1, "d1"]
    assert (json.loads(str(args[3])), json.loads(str(args[4]))) == ([["x", "control"], ["y", "b"]], {"late": 2})
    assert args[7:] == ["c1", "p:e1", entries[0].owed, "c2", "p:e2", entries[1].owed]


def _owed_latest(ts: int) -> str:
    latest: object = [[ts, "{}"], [ts - 5, "{}"]] if ts else {}  # Lua's cjson writes an empty list as {}
    return json.dumps({"pop": {}, "cat": {}, "n": {}, "latest": latest, "ab": [], "daily": [], "start": []})


def test_a_big_step_goes_in_calls_of_bounded_entries_the_newest_purchases_last() -> None:
    entries = [Entry(f"c{i}", f"p:e{i}", _owed_latest((i * 7919) % 1000 + 10 if i % 3 else 0))
               for i in range(2 * ENTRIES_PER_CALL + 5)]
    calls = shared_calls(KEYS, entries, ["d1"], {"late": 2}, dead_letter_keep_s=30, latest_n=7)
    triples = [args[6 + int(args[5]):] for _, args in calls]  # past the header and the dead-letter ids
    assert [len(part) // 3 for part in triples] == [ENTRIES_PER_CALL, ENTRIES_PER_CALL, 5]
    sent = [(str(customer), str(entry_id), str(owed)) for part in triples
            for customer, entry_id, owed in zip(part[::3], part[1::3], part[2::3], strict=True)]
    assert sorted(sent) == sorted((e.customer, e.entry_id, e.owed) for e in entries)
    newest = [max((item[0] for item in json.loads(owed)["latest"] or []), default=0) for _, _, owed in sent]
    assert newest == sorted(newest)
    assert [(args[4], args[5:6]) for _, args in calls] == [("{}", [0]), ("{}", [0]), ('{"late":2}', [1])]
    assert calls[-1][1][6] == "d1"


def test_a_small_step_is_one_call_in_the_entries_order() -> None:
    entries = [Entry(f"c{i}", f"p:e{i}", _owed_latest(10 - i)) for i in range(3)]
    [(_, args)] = shared_calls(KEYS, entries, ["d1"], {"late": 2}, dead_letter_keep_s=30, latest_n=7)
    assert args[5:] == [1, "d1", *(part for e in entries for part in (e.customer, e.entry_id, e.owed))]
    assert len(shared_calls(KEYS, [], [], {"late": 1}, dead_letter_keep_s=30, latest_n=7)) == 1


def test_the_scripts_read_their_keys_and_arguments_where_python_puts_them() -> None:
    assert f"local HEADER, CUSTOMER_KEYS = {HEADER_ARGS}, {CUSTOMER_KEYS}\n" in APPLY_PURCHASES
    assert f"local SHARED_KEYS = {SHARED_KEYS}\n" in APPLY_SHARED
    assert len(shared_keys(KEYS)) == SHARED_KEYS


def test_an_outbox_answer_reads_as_entries() -> None:
    assert entries_of("c1", [b"p:e1", b'{"n":{}}', "x:a:r1", "{}"]) == [Entry("c1", "p:e1", '{"n":{}}'),
                                                                       Entry("c1", "x:a:r1", "{}")]


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
    for name in ("outbox", "attribution", "apply_purchases", "apply_exposures", "apply_shared"):
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

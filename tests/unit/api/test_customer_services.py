from __future__ import annotations

import json

import pytest

from api.services.customer_state import shown_products
from api.services.customers import DAY_S, NEW_TO_MODEL, buy_cycle, movement


def test_the_cycle_is_the_median_gap_and_the_due_date_follows_the_last_purchase() -> None:
    published = json.dumps([["x", [100, 110, 130]], ["y", [100, 104]]])
    names = {"x": {"name": "Arepas"}}
    # the stream saw y again on day 107 (after the model's last day); x only on its last published day
    last_bought = {"y": 107 * DAY_S + 3600, "x": 130 * DAY_S + 60}
    x, y = buy_cycle(published, last_bought, as_of=135 * DAY_S, products=names)
    assert x["name"] == "Arepas" and x["purchases"] == [100 * DAY_S, 110 * DAY_S, 130 * DAY_S]
    assert x["cycle_days"] == 15 and x["due_at"] == 145 * DAY_S and not x["overdue"]
    assert y["purchases"] == [100 * DAY_S, 104 * DAY_S, 107 * DAY_S + 3600]
    assert y["cycle_days"] == pytest.approx(3.52, abs=0.01) and y["overdue"]
    assert buy_cycle(None, {}, 0, {}) == []


def test_movement_counts_each_pair_most_first() -> None:
    moves = movement(["loyal", "loyal", None, "champions", "loyal"], ["at_risk", "loyal", "new", None, "at_risk"])
    assert moves == [{"from_segment": "loyal", "to_segment": "at_risk", "customers": 2},
                     {"from_segment": "loyal", "to_segment": "loyal", "customers": 1},
                     {"from_segment": NEW_TO_MODEL, "to_segment": "new", "customers": 1}]


@pytest.mark.parametrize(("member", "products"), [
    ("r1 p1 p2 p-3", ["p1", "p2", "p-3"]), ("r1", []), ("p1|r1", ["p1"]), ("p.1|r-9", ["p.1"])])
def test_an_exposure_member_names_its_products(member: str, products: list[str]) -> None:
    assert shown_products(member) == products

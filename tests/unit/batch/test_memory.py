from __future__ import annotations

import pandas as pd
import pytest

from batch.memory import (
    EASE_MIN_ITEMS,
    GIB,
    DataShape,
    MemoryBudgetError,
    MemoryPlan,
    ease_bytes,
    factor_bytes,
    interactions_bytes,
)


def test_shape_counts_customers_products_and_distinct_pairs() -> None:
    lines = pd.DataFrame({"customer_id": ["a", "a", "a", "b", "c"], "product_id": ["x", "x", "y", "x", "z"]})
    shape = DataShape.of(lines)
    assert (shape.customers, shape.products, shape.cells, shape.lines) == (3, 3, 4, 5)


def test_estimates_from_hand_computed_shapes() -> None:
    shape = DataShape(customers=1000, products=500, cells=20_000, lines=50_000, lines_bytes=0)
    # float32 tiles of the lower triangle (diagonal tiles whole) + the float32 weights
    assert ease_bytes(500) == 500 * (500 + 2048) * 2 + 500 * 500 * 4
    assert interactions_bytes(shape) == 50_000 * 48 + 20_000 * 48
    assert factor_bytes(shape, 64) == 1500 * 64 * 4 * 4 + 20_000 * 16


def test_ease_gets_every_product_when_the_budget_allows() -> None:
    shape = DataShape(customers=4000, products=3600, cells=250_000, lines=400_000, lines_bytes=80 * 2**20)
    plan = MemoryPlan.for_data(shape, budget_gb=8, ease_max_items=20_000)
    assert plan.ease_items == 3600
    assert plan.case_study_customers == 4000
    assert plan.planned_bytes <= plan.budget_bytes


def test_ease_is_capped_by_the_setting_and_then_by_the_budget() -> None:
    shape = DataShape(customers=200_000, products=100_000, cells=7_000_000, lines=10_000_000,
                      lines_bytes=1_400_000_000)
    capped = MemoryPlan.for_data(shape, budget_gb=64, ease_max_items=20_000)
    assert capped.ease_items == 20_000
    tight = MemoryPlan.for_data(shape, budget_gb=8, ease_max_items=100_000)
    assert EASE_MIN_ITEMS < tight.ease_items < 100_000
    # what is left after the base fits EASE on exactly that many products (and not one more)
    free = tight.budget_bytes - tight.base_bytes
    assert ease_bytes(tight.ease_items) <= free < ease_bytes(tight.ease_items + 1)


def test_a_budget_below_the_smallest_plan_names_the_setting() -> None:
    shape = DataShape(customers=200_000, products=100_000, cells=7_000_000, lines=10_000_000,
                      lines_bytes=1_400_000_000)
    with pytest.raises(MemoryBudgetError, match="RECSYS_BATCH_MEMORY_GB is 2;") as error:
        MemoryPlan.for_data(shape, budget_gb=2, ease_max_items=20_000)
    needed = float(str(error.value).split("need about ")[1].split(" GiB")[0])
    assert needed * GIB > 2 * GIB

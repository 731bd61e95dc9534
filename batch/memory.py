"""The batch's memory plan: what each step needs, estimated from the data's shape before anything big is
allocated, and the sizes chosen so the whole run stays within `RECSYS_BATCH_MEMORY_GB`.

The estimates are upper bounds in bytes from counts (customers, products, non-zero customer x product cells,
purchase lines); `tests/unit/batch/test_memory.py` checks them against hand-computed shapes. What the plan decides:
how many products EASE (item x item) covers, how many customers the case study's dense protocol uses. When even
the smallest plan does not fit, `MemoryBudgetError` says how much it needs and which setting to change."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

GIB = 2**30
MIB = 2**20
BUDGET_SETTING = "RECSYS_BATCH_MEMORY_GB"
EASE_SETTING = "RECSYS_BATCH_EASE_MAX_ITEMS"

# Per purchase line while the customer x product matrices are built (the pairs frame and its group-by), and per
# stored cell (three float32 matrices + their indices, the binary copy and one weighted copy).
INTERACTIONS_BYTES_PER_LINE = 48
INTERACTIONS_BYTES_PER_CELL = 48
# The cleaned lines are held once, and one split (train + test copies) at a time.
LINE_COPIES = 2
# Rules: the order x product basket matrix, its sorted label arrays and the pair counts.
RULES_BYTES_PER_LINE = 64
# One dense scoring array (float64, rows x products) is at most this large; about this many live at once.
SCORE_CHUNK_BYTES = 64 * MIB
LIVE_SCORE_ARRAYS = 8
# EASE keeps one n x n buffer (Gram matrix, factorised and inverted in place).
EASE_MIN_ITEMS = 100
# Factor models: user and item factors plus solver work arrays, float32, a few copies.
FACTOR_COPIES = 4
FACTOR_ITEMSIZE = 4
MAX_FACTORS = 128
# The case study's protocol: a dense customers x 1,000 products float64 matrix, a few copies (pivot, NMF).
CASE_STUDY_PRODUCTS = 1000
CASE_STUDY_COPIES = 5
CASE_STUDY_MIN_CUSTOMERS = 1000  # below this, the sample says too little: skipped
# Python, numpy, pandas, matplotlib and the rest before any data.
BASELINE_BYTES = 600 * MIB


class MemoryBudgetError(Exception):
    """The data cannot be processed within the memory budget; the message names the setting to change."""


@dataclass(frozen=True)
class DataShape:
    customers: int
    products: int
    cells: int  # non-zero customer x product cells (distinct pairs)
    lines: int
    lines_bytes: int  # memory of the cleaned lines table

    @classmethod
    def of(cls, lines: pd.DataFrame) -> DataShape:
        """From the cleaned lines; the distinct pairs are counted on integer codes, which is cheap."""
        customers = pd.factorize(lines["customer_id"])[0].astype("int64")
        products, product_ids = pd.factorize(lines["product_id"])
        n_products = len(product_ids)
        cells = int(pd.unique(customers * max(n_products, 1) + products).size) if len(lines) else 0
        return cls(customers=int(customers.max()) + 1 if len(lines) else 0, products=n_products, cells=cells,
                   lines=len(lines), lines_bytes=int(lines.memory_usage(deep=True).sum()))


def interactions_bytes(shape: DataShape) -> int:
    return shape.lines * INTERACTIONS_BYTES_PER_LINE + shape.cells * INTERACTIONS_BYTES_PER_CELL


# EASE's Gram matrix is inverted in tiles of this many products a side (batch/models/tiled.py): no BLAS or LAPACK
# call sees more than one tile.
TILE = 2048


def ease_bytes(items: int) -> int:
    """EASE's peak: the Gram matrix's lower triangle in float32 tiles (batch/models/tiled.py; the diagonal tiles
    whole), and the float32 weights it becomes, filled while the tiles are freed."""
    return items * (items + TILE) * 2 + items * items * 4


def factor_bytes(shape: DataShape, factors: int) -> int:
    return (shape.customers + shape.products) * factors * FACTOR_ITEMSIZE * FACTOR_COPIES + shape.cells * 16


def rules_bytes(shape: DataShape) -> int:
    return shape.lines * RULES_BYTES_PER_LINE


def scoring_bytes() -> int:
    return SCORE_CHUNK_BYTES * LIVE_SCORE_ARRAYS


def case_study_bytes(customers: int) -> int:
    return customers * CASE_STUDY_PRODUCTS * 8 * CASE_STUDY_COPIES


@dataclass(frozen=True)
class MemoryPlan:
    budget_bytes: int
    shape: DataShape
    base_bytes: int  # data, matrices, scoring chunks, rules, factor models: what every run needs
    ease_items: int
    case_study_customers: int

    @classmethod
    def for_data(cls, shape: DataShape, budget_gb: float, ease_max_items: int) -> MemoryPlan:
        budget = int(budget_gb * GIB)
        base = (BASELINE_BYTES + shape.lines_bytes * LINE_COPIES + 2 * interactions_bytes(shape)
                + scoring_bytes() + rules_bytes(shape) + factor_bytes(shape, MAX_FACTORS))
        smallest_ease = ease_bytes(min(EASE_MIN_ITEMS, shape.products))
        if base + smallest_ease > budget:
            raise MemoryBudgetError(
                f"{shape.lines:,} purchase lines ({shape.customers:,} customers x {shape.products:,} products) need "
                f"about {(base + smallest_ease) / GIB:.1f} GiB but {BUDGET_SETTING} is {budget_gb:g}; raise "
                f"{BUDGET_SETTING} or train on less history (--until)")
        free = budget - base
        wanted = min(shape.products, ease_max_items)
        fits = (math.isqrt(TILE * TILE + 6 * max(free, 0)) - TILE) // 6  # the root of 6 n^2 + 2 TILE n = free
        while ease_bytes(fits + 1) <= free:
            fits += 1
        while fits > 0 and ease_bytes(fits) > free:
            fits -= 1
        ease_items = max(min(wanted, fits), min(EASE_MIN_ITEMS, shape.products))
        # The case study runs after the evaluated models are dropped, so it may use EASE's share.
        case_customers = min(shape.customers, max(free, 0) // case_study_bytes(1))
        case_customers = case_customers if case_customers >= min(CASE_STUDY_MIN_CUSTOMERS, shape.customers) else 0
        return cls(budget_bytes=budget, shape=shape, base_bytes=base, ease_items=ease_items,
                   case_study_customers=int(case_customers))

    @property
    def planned_bytes(self) -> int:
        return self.base_bytes + ease_bytes(self.ease_items)

    def summary(self) -> dict[str, Any]:
        return {
            "budget_gib": round(self.budget_bytes / GIB, 2), "planned_gib": round(self.planned_bytes / GIB, 2),
            "customers": self.shape.customers, "products": self.shape.products, "cells": self.shape.cells,
            "lines": self.shape.lines, "ease_items": self.ease_items,
            "case_study_customers": self.case_study_customers,
        }

    def describe(self) -> str:
        s = self.summary()
        return (f"memory plan: {s['planned_gib']:.1f} of {s['budget_gib']:g} GiB ({BUDGET_SETTING}); EASE on "
                f"{self.ease_items:,} of {self.shape.products:,} products")

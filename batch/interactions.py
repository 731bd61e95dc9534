"""The customer x product matrices every model trains on, built once per training window."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd
import scipy.sparse as sp

from common.data.membership import is_in

SECONDS_PER_DAY = 86_400.0


@dataclass
class Interactions:
    """Rows are customers, columns products, both in a fixed order (`customer_ids`, `product_ids`).

    `orders` counts the distinct orders in which a customer bought a product; `amount` sums what they paid for it;
    `last_day` is the last purchase day (days since the window's start + 1, so 0 means "never").
    """

    customer_ids: np.ndarray
    product_ids: np.ndarray
    orders: sp.csr_matrix
    amount: sp.csr_matrix
    last_day: sp.csr_matrix
    end: pd.Timestamp
    start: pd.Timestamp
    lines: pd.DataFrame = field(repr=False)
    # Each line's row and column, so models reading the lines do not convert millions of ids again.
    line_rows: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0, dtype=np.int64))
    line_cols: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0, dtype=np.int64))

    @classmethod
    def from_lines(cls, lines: pd.DataFrame, products: np.ndarray | None = None) -> Interactions:
        """`products` fixes the column order (e.g. to the training catalogue); other products are dropped."""
        if products is not None:
            lines = lines[is_in(lines["product_id"], products)]
        customer_ids = np.sort(np.asarray(lines["customer_id"].unique(), dtype=str))
        product_ids = np.sort(np.asarray(products if products is not None else lines["product_id"].unique(), dtype=str))
        start = lines["event_time"].min() if len(lines) else pd.Timestamp(0)
        end = lines["event_time"].max() if len(lines) else pd.Timestamp(0)
        rows = np.searchsorted(customer_ids, lines["customer_id"].to_numpy(dtype=str))
        cols = positions(product_ids, lines["product_id"].to_numpy(dtype=str))
        day = ((lines["event_time"] - start).dt.total_seconds().to_numpy() / SECONDS_PER_DAY).astype(np.float32) + 1
        pairs = pd.DataFrame(
            {"row": rows, "col": cols, "order": lines["order_id"].to_numpy(), "amount": lines["amount"].to_numpy(),
             "day": day}
        )
        per_pair = pairs.groupby(["row", "col"], sort=False).agg(
            orders=("order", "nunique"), amount=("amount", "sum"), day=("day", "max")
        )
        r = per_pair.index.get_level_values(0).to_numpy()
        c = per_pair.index.get_level_values(1).to_numpy()
        shape = (len(customer_ids), len(product_ids))

        def matrix(values: np.ndarray) -> sp.csr_matrix:
            return sp.csr_matrix((values.astype(np.float32), (r, c)), shape=shape)

        return cls(
            customer_ids=customer_ids,
            product_ids=product_ids,
            orders=matrix(per_pair["orders"].to_numpy()),
            amount=matrix(per_pair["amount"].to_numpy()),
            last_day=matrix(per_pair["day"].to_numpy()),
            end=end,
            start=start,
            lines=lines,
            line_rows=rows.astype(np.int64),
            line_cols=cols.astype(np.int64),
        )

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.customer_ids), len(self.product_ids)

    @cached_property
    def line_orders(self) -> np.ndarray:
        """Each line's order as an integer code, in the ids' sorted order (grouping or sorting by it is many times
        faster than by the id text, with the same result)."""
        codes, _ = pd.factorize(self.lines["order_id"], sort=True)
        return codes.astype(np.int64)

    @cached_property
    def binary(self) -> sp.csr_matrix:
        seen = self.orders.copy()
        seen.data[:] = 1.0
        return seen

    def rows_of(self, customer_ids: np.ndarray) -> np.ndarray:
        """Row index per customer id; -1 for customers not in this window."""
        return positions(self.customer_ids, np.asarray(customer_ids, dtype=str))

    def bought_within(self, window_days: float | None) -> sp.csr_matrix:
        """1 where the customer bought the product in the last `window_days` days of the window (ever if None)."""
        if window_days is None:
            return self.binary
        cutoff = (self.end - self.start).total_seconds() / SECONDS_PER_DAY + 1 - window_days
        recent = self.last_day.copy()
        recent.data = (recent.data > cutoff).astype(np.float32)
        recent.eliminate_zeros()
        return recent

    def popularity(self, window_days: float | None = None) -> np.ndarray:
        """Distinct buyers per product, over the whole window or its last `window_days` days."""
        return np.asarray(self.bought_within(window_days).sum(axis=0)).ravel()

    def weighted(self, weighting: str) -> sp.csr_matrix:
        """The matrix a factorisation trains on: 'amount', 'binary' or 'log_orders' (1 + log orders)."""
        if weighting == "amount":
            return self.amount
        if weighting == "binary":
            return self.binary
        if weighting == "log_orders":
            logged = self.orders.copy()
            logged.data = 1.0 + np.log(logged.data)
            return logged
        raise ValueError(f"unknown weighting {weighting!r}; use amount, binary or log_orders")


def positions(sorted_ids: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Index of each id in `sorted_ids` (which must be sorted), -1 where absent."""
    if len(sorted_ids) == 0:
        return np.full(len(ids), -1, dtype=np.int64)
    at = np.searchsorted(sorted_ids, ids)
    at = np.clip(at, 0, len(sorted_ids) - 1)
    return np.where(sorted_ids[at] == ids, at, -1).astype(np.int64)

"""The customer's own most-bought products: orders per product, optionally decayed by how long ago."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from batch.interactions import SECONDS_PER_DAY, Interactions
from batch.models.base import Recommender, sparse_arrays, sparse_from
from batch.models.topk import CANDIDATE_POOL, Candidates


class RepeatRecommender(Recommender):
    name = "repeat"
    ranks_by_candidates = True

    def __init__(self, half_life_days: float | None = None, log_scale: bool = False) -> None:
        super().__init__()
        self.half_life_days = half_life_days
        # Ranking is the same either way; log scores blend better (one staple bought 40 times does not flatten
        # the rest of the customer's list to zero once scaled).
        self.log_scale = log_scale
        self.weights = sp.csr_matrix((0, 0), dtype=np.float64)

    def _fit(self, data: Interactions) -> None:
        if self.half_life_days is None:
            self.weights = data.orders.astype(np.float64)
            return
        # One weight per (customer, product, order): 1 today, 1/2 one half-life ago.
        age = (data.end - data.lines["event_time"]).dt.total_seconds().to_numpy() / SECONDS_PER_DAY
        lines = pd.DataFrame({"row": data.line_rows, "col": data.line_cols, "order": data.line_orders, "age": age})
        lines = lines.drop_duplicates(["row", "col", "order"])
        weight = np.power(0.5, lines["age"].to_numpy() / self.half_life_days)
        self.weights = sp.csr_matrix((weight, (lines["row"].to_numpy(), lines["col"].to_numpy())), shape=data.shape)

    def _score(self, rows: np.ndarray) -> np.ndarray:
        dense: np.ndarray = self.weights[rows].toarray()
        return np.log1p(dense) if self.log_scale else dense

    def candidate_width(self) -> int:
        return CANDIDATE_POOL

    def candidates(self, rows: np.ndarray, pool: int, exclude_seen: bool) -> Candidates:
        del pool  # a customer's own products are few: all of them are candidates
        block = sp.csr_matrix(self.weights[rows])
        if self.log_scale:
            block.data = np.log1p(block.data)
        found = Candidates.sparse(block)
        # It only scores what the customer bought: with those excluded, nothing is left.
        return found.keep(np.zeros(len(found.row), dtype=bool)) if exclude_seen else found

    def params(self) -> dict[str, Any]:
        return {"half_life_days": self.half_life_days, "log_scale": self.log_scale}

    def _arrays(self) -> dict[str, np.ndarray]:
        return sparse_arrays("weights", self.weights)

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        self.weights = sparse_from(arrays, "weights", self.shape)

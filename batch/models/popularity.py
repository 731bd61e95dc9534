"""Best-sellers: distinct buyers per product, all time or in the last N days."""

from __future__ import annotations

from typing import Any

import numpy as np

from batch.interactions import Interactions
from batch.models.base import Recommender
from batch.models.topk import CANDIDATE_POOL, Candidates


class PopularityRecommender(Recommender):
    name = "popularity"
    ranks_by_candidates = True

    def __init__(self, window_days: float | None = None) -> None:
        super().__init__()
        self.window_days = window_days
        self.counts = np.empty(0)

    def _fit(self, data: Interactions) -> None:
        self.counts = data.popularity(self.window_days).astype(np.float64)

    def _score(self, rows: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.counts, (len(rows), len(self.counts))).copy()

    def candidate_width(self) -> int:
        return CANDIDATE_POOL

    def candidates(self, rows: np.ndarray, pool: int, exclude_seen: bool) -> Candidates:
        """The same best-sellers for every row: `pool` of them, plus as many as the customer bought when those
        are dropped, extended through ties so the bound on the rest is strict."""
        order = np.argsort(-self.counts, kind="stable")
        ranked = self.counts[order]
        seen = self.seen[rows] if exclude_seen else None
        sizes = np.minimum(pool + (np.diff(seen.indptr) if seen is not None else 0), len(order))
        sizes = np.full(len(rows), 1) * sizes
        # Through ties: a row takes every product that sells as well as its last one.
        tied = np.searchsorted(-ranked, -ranked[np.maximum(sizes - 1, 0)], side="right")
        sizes = np.where(sizes > 0, tied, 0)
        bound = np.where(sizes < len(order), ranked[np.minimum(sizes, len(order) - 1)], -np.inf)
        row = np.repeat(np.arange(len(rows)), sizes)
        at = np.arange(len(row)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        counts = self.counts
        found = Candidates(row, order[at], ranked[at].astype(np.float64), bound, bound <= 0,
                           lambda _rows, cols: counts[cols].astype(np.float64),
                           np.full(len(rows), float(counts.max()) if len(counts) else 0.0))
        return found.without(seen) if seen is not None else found

    def params(self) -> dict[str, Any]:
        return {"window_days": self.window_days}

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"counts": self.counts}

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        self.counts = arrays["counts"]

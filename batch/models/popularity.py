"""Best-sellers: distinct buyers per product, all time or in the last N days."""

from __future__ import annotations

from typing import Any

import numpy as np

from batch.interactions import Interactions
from batch.models.base import CANDIDATE_POOL, Candidates, Recommender


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
        """The same best-sellers for every row: enough of them that `pool` remain after the customer's own are
        dropped, extended through ties so the bound on the rest is strict."""
        order = np.argsort(-self.counts, kind="stable")
        seen = self.seen[rows] if exclude_seen else None
        wanted = min(len(order), pool + (int(np.diff(seen.indptr).max()) if seen is not None and len(rows) else 0))
        ranked = self.counts[order]
        if wanted < len(order):
            wanted = int(np.searchsorted(-ranked, -ranked[wanted - 1], side="right")) if wanted else 0
        bound = ranked[wanted] if wanted < len(order) else -np.inf
        cols = order[:wanted]
        counts = self.counts
        found = Candidates(np.repeat(np.arange(len(rows)), wanted), np.tile(cols, len(rows)),
                           np.tile(ranked[:wanted], len(rows)), np.full(len(rows), bound),
                           np.full(len(rows), bound <= 0), lambda _rows, at: counts[at].astype(np.float64),
                           np.full(len(rows), float(counts.max()) if len(counts) else 0.0))
        return found.without(seen) if seen is not None else found

    def params(self) -> dict[str, Any]:
        return {"window_days": self.window_days}

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"counts": self.counts}

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        self.counts = arrays["counts"]

"""Best-sellers: distinct buyers per product, all time or in the last N days."""

from __future__ import annotations

from typing import Any

import numpy as np

from batch.interactions import Interactions
from batch.models.base import Recommender


class PopularityRecommender(Recommender):
    name = "popularity"

    def __init__(self, window_days: float | None = None) -> None:
        super().__init__()
        self.window_days = window_days
        self.counts = np.empty(0)

    def _fit(self, data: Interactions) -> None:
        self.counts = data.popularity(self.window_days).astype(np.float64)

    def _score(self, rows: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.counts, (len(rows), len(self.counts))).copy()

    def params(self) -> dict[str, Any]:
        return {"window_days": self.window_days}

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"counts": self.counts}

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        self.counts = arrays["counts"]

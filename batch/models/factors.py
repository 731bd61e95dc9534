"""Matrix factorisation on the sparse customer x product matrix with the `implicit` library: ALS for implicit
feedback (confidence-weighted). Linear in the non-zeros, multi-threaded. It replaced scikit-learn's NMF, and BPR
(also from `implicit`) was dropped: both lost to it on validation (docs/architecture.md)."""

from __future__ import annotations

from typing import Any

import numpy as np
from implicit.cpu.als import AlternatingLeastSquares
from threadpoolctl import threadpool_limits

from batch.interactions import Interactions
from batch.models.base import Recommender


class _FactorModel(Recommender):
    """Score = user factors @ item factors'. `weighting` is what a cell holds (see `Interactions.weighted`)."""

    def __init__(self, factors: int, weighting: str, iterations: int, seed: int) -> None:
        super().__init__()
        self.factors = factors
        self.weighting = weighting
        self.iterations = iterations
        self.seed = seed
        self.user_factors = np.empty((0, 0), dtype=np.float32)
        self.item_factors = np.empty((0, 0), dtype=np.float32)

    def _fit(self, data: Interactions) -> None:
        # implicit parallelises itself; BLAS threads inside its threads only compete (it warns otherwise).
        with threadpool_limits(1, "blas"):
            model = self._model()
            model.fit(data.weighted(self.weighting).astype(np.float32).tocsr(), show_progress=False)
        self.user_factors = np.asarray(model.user_factors, dtype=np.float32)
        self.item_factors = np.asarray(model.item_factors, dtype=np.float32)

    def _model(self) -> AlternatingLeastSquares:
        raise NotImplementedError

    def _score(self, rows: np.ndarray) -> np.ndarray:
        scores: np.ndarray = (self.user_factors[rows] @ self.item_factors.T).astype(np.float64)
        return scores

    def params(self) -> dict[str, Any]:
        return {"factors": self.factors, "weighting": self.weighting, "iterations": self.iterations,
                "seed": self.seed}

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"user_factors": self.user_factors, "item_factors": self.item_factors}

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        self.user_factors = arrays["user_factors"]
        self.item_factors = arrays["item_factors"]


class AlsRecommender(_FactorModel):
    """Hu, Koren & Volinsky (2008): confidence 1 + alpha x cell, alternating least squares."""

    name = "als"

    def __init__(self, factors: int = 64, regularization: float = 0.01, alpha: float = 10.0,
                 weighting: str = "log_orders", iterations: int = 15, seed: int = 42) -> None:
        super().__init__(factors, weighting, iterations, seed)
        self.regularization = regularization
        self.alpha = alpha

    def _model(self) -> AlternatingLeastSquares:
        return AlternatingLeastSquares(factors=self.factors, regularization=self.regularization, alpha=self.alpha,
                                       iterations=self.iterations, random_state=self.seed)

    def params(self) -> dict[str, Any]:
        return super().params() | {"regularization": self.regularization, "alpha": self.alpha}

"""NMF collaborative filtering (scikit-learn) on the customer x product matrix."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.decomposition import NMF
from sklearn.exceptions import ConvergenceWarning

from batch.interactions import Interactions
from batch.models.base import Recommender


class NmfRecommender(Recommender):
    """Score = W @ H. `weighting` is what a cell holds: the amount paid (the case study's choice), 1 for bought,
    or 1 + log(orders)."""

    name = "nmf"

    def __init__(self, n_components: int = 10, weighting: str = "amount", max_iter: int = 200,
                 alpha: float = 0.0, seed: int = 42) -> None:
        super().__init__()
        self.n_components = n_components
        self.weighting = weighting
        self.max_iter = max_iter
        self.alpha = alpha
        self.seed = seed
        self.user_factors = np.empty((0, 0))
        self.item_factors = np.empty((0, 0))
        self.converged = True

    def _fit(self, data: Interactions) -> None:
        matrix = data.weighted(self.weighting).astype(np.float64)
        model = NMF(n_components=self.n_components, init="nndsvd", max_iter=self.max_iter, alpha_W=self.alpha,
                    alpha_H="same", random_state=self.seed)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            self.user_factors = model.fit_transform(matrix).astype(np.float32)
        # Not converging within max_iter is normal for NMF here; it is recorded, not raised.
        self.converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
        self.item_factors = model.components_.astype(np.float32)

    def _score(self, rows: np.ndarray) -> np.ndarray:
        scores: np.ndarray = (self.user_factors[rows] @ self.item_factors).astype(np.float64)
        return scores

    def params(self) -> dict[str, Any]:
        return {"n_components": self.n_components, "weighting": self.weighting, "max_iter": self.max_iter,
                "alpha": self.alpha, "seed": self.seed}

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"user_factors": self.user_factors, "item_factors": self.item_factors}

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        self.user_factors = arrays["user_factors"]
        self.item_factors = arrays["item_factors"]

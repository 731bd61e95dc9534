"""EASE (Steck, 2019): a closed-form item-item model, strong on sparse purchase data."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from batch.interactions import Interactions
from batch.models.base import Recommender, sparse_arrays, sparse_from


class EaseRecommender(Recommender):
    """B = I - P / diag(P) with P = (X'X + l2 I)^-1 and a zero diagonal; score = X B."""

    name = "ease"

    def __init__(self, l2: float = 200.0, weighting: str = "binary") -> None:
        super().__init__()
        self.l2 = l2
        self.weighting = weighting
        self.item_weights = np.empty((0, 0))
        self._x = sp.csr_matrix((0, 0), dtype=np.float32)

    def _fit(self, data: Interactions) -> None:
        x = data.weighted(self.weighting).astype(np.float64)
        gram = (x.T @ x).toarray()
        gram[np.diag_indices_from(gram)] += self.l2
        precision = scipy.linalg.inv(gram, overwrite_a=True, check_finite=False)
        weights = -precision / np.diag(precision)[None, :]
        weights[np.diag_indices_from(weights)] = 0.0
        self.item_weights = weights.astype(np.float32)
        self._x = x.tocsr().astype(np.float32)

    def _score(self, rows: np.ndarray) -> np.ndarray:
        scores: np.ndarray = np.asarray(self._x[rows] @ self.item_weights, dtype=np.float64)
        return scores

    def params(self) -> dict[str, Any]:
        return {"l2": self.l2, "weighting": self.weighting}

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"item_weights": self.item_weights} | sparse_arrays("x", self._x)

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        self.item_weights = arrays["item_weights"]
        self._x = sparse_from(arrays, "x", self.shape)

"""Matrix factorisation on the sparse customer x product matrix: ALS for implicit feedback (confidence-weighted,
the `implicit` library; linear in the non-zeros, multi-threaded), and NMF (scikit-learn, on the sparse matrix),
which the design card names as the nightly model: both are candidate generators of the ranker and rows of every
evaluation table. (BPR, also from `implicit`, lost to both on validation and was dropped: docs/architecture.md.)"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from implicit.cpu.als import AlternatingLeastSquares
from implicit.cpu.topk import topk
from sklearn.decomposition import NMF
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

from batch.interactions import Interactions
from batch.models.base import Recommender
from batch.models.topk import Candidates

# implicit's top-k scores in float32 and the exact scores are float64: products it leaves out may score this
# much (relative to the row's largest possible score) above the last one it kept.
ROUNDING_SLACK = 1e-4
SELECTION_MARGIN = 16  # kept beyond the pool, so the bound sits below the pool's last score
CANDIDATE_WIDTH = 256  # columns per row of implicit's working block (sizes the chunks of rows)


class _FactorModel(Recommender):
    """Score = user factors @ item factors' (in float64). `weighting` is what a cell holds (see
    `Interactions.weighted`). Rankings select candidates with implicit's threaded top-k, which never holds a
    dense customers x products block, and score them exactly."""

    ranks_by_candidates = True

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
        scores: np.ndarray = self.user_factors[rows].astype(np.float64) @ self.item_factors.T.astype(np.float64)
        return scores

    def candidate_width(self) -> int:
        return CANDIDATE_WIDTH

    def candidates(self, rows: np.ndarray, pool: int, exclude_seen: bool) -> Candidates:
        users = self.user_factors[rows]
        n_products = len(self.product_ids)
        wanted = min(pool + SELECTION_MARGIN, n_products)
        seen = self.seen[rows].astype(np.float32).tocsr() if exclude_seen else None
        picked, approx = topk(self.item_factors, users, wanted, filter_query_items=seen, num_threads=0)
        valid = approx > np.finfo(np.float32).min
        row = np.repeat(np.arange(len(rows)), wanted).reshape(picked.shape)[valid]
        col = picked[valid].astype(np.int64)
        lookup = self._lookup(rows)
        # Every product left out scored at most the last one kept, give or take float32 rounding; a row that kept
        # fewer than asked has nothing else left (the rest was excluded).
        largest = np.linalg.norm(users, axis=1) * float(np.linalg.norm(self.item_factors, axis=1).max(initial=0.0))
        full = valid.all(axis=1) & (wanted < n_products)
        bound = np.where(full, approx[:, -1].astype(np.float64) + ROUNDING_SLACK * largest, -np.inf)
        scores = lookup(row, col)
        # The row's best over every product: the best of implicit's first picks (float32 rounding can only reorder
        # near-ties, and those sit among them), or, when seen ones were filtered out, of a seen product.
        top = np.full(len(rows), -np.inf)
        np.maximum.at(top, row, scores)
        if seen is not None:
            seen_row, seen_col = seen.nonzero()
            np.maximum.at(top, seen_row, lookup(seen_row, seen_col.astype(np.int64)))
        return Candidates(row, col, scores, bound, ~full, lookup, top)

    def _lookup(self, rows: np.ndarray) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        users = self.user_factors[rows].astype(np.float64)

        def lookup(chunk_rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
            scores: np.ndarray = np.einsum("ij,ij->i", users[chunk_rows], self.item_factors[cols].astype(np.float64))
            return scores

        return lookup

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


class NmfRecommender(_FactorModel):
    """Non-negative matrix factorisation (scikit-learn's `NMF`, coordinate descent on the sparse matrix, so no
    dense customers x products array is made): cell ~ W H with W, H >= 0."""

    name = "nmf"

    def __init__(self, factors: int = 32, weighting: str = "log_orders", iterations: int = 200, seed: int = 42,
                 regularization: float = 0.0) -> None:
        super().__init__(factors, weighting, iterations, seed)
        self.regularization = regularization

    def _fit(self, data: Interactions) -> None:
        matrix = data.weighted(self.weighting).astype(np.float32).tocsr()
        factors = min(self.factors, *matrix.shape) if min(matrix.shape) else 0
        if factors == 0 or matrix.nnz == 0:
            self.user_factors = np.zeros((matrix.shape[0], 1), dtype=np.float32)
            self.item_factors = np.zeros((matrix.shape[1], 1), dtype=np.float32)
            return
        model = NMF(n_components=factors, init="nndsvda", solver="cd", max_iter=self.iterations,
                    random_state=self.seed, alpha_W=self.regularization, alpha_H="same")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # the iteration budget is a setting, not a bug
            users = model.fit_transform(matrix)
        self.user_factors = np.asarray(users, dtype=np.float32)
        self.item_factors = np.asarray(model.components_.T, dtype=np.float32)

    def params(self) -> dict[str, Any]:
        return super().params() | {"regularization": self.regularization}

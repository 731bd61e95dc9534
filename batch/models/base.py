"""One small interface for every model: fit, score, recommend, save, load."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp

from batch.interactions import Interactions, positions
from batch.memory import SCORE_CHUNK_BYTES
from batch.models.topk import (
    CANDIDATE_CHUNK_ROWS,
    CANDIDATE_POOL,
    Candidates,
    mask_seen,
    only_rows,
    pool_of,
    top_from_candidates,
    top_k,
)


def chunk_rows(n_products: int) -> int:
    """Rows scored at once, so one dense float64 score array stays within the memory plan's chunk size."""
    return max(1, min(4096, SCORE_CHUNK_BYTES // (8 * max(n_products, 1))))


class Recommender(ABC):
    """Scores every product for a customer row; higher is better. Unknown customers (row -1) score zero
    everywhere, so their list falls back to popularity through the tie-break."""

    name: ClassVar[str]
    registry: ClassVar[dict[str, type[Recommender]]] = {}

    def __init__(self) -> None:
        self.customer_ids = np.empty(0, dtype=str)
        self.product_ids = np.empty(0, dtype=str)
        self.seen = sp.csr_matrix((0, 0), dtype=np.float32)
        self.popularity = np.empty(0)
        self._popularity_order = np.empty(0, dtype=np.int64)
        self._order_of: np.ndarray | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if hasattr(cls, "name"):
            Recommender.registry[cls.name] = cls

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.customer_ids), len(self.product_ids)

    def fit(self, data: Interactions) -> Self:
        self.customer_ids = data.customer_ids
        self.product_ids = data.product_ids
        self.seen = data.binary
        self.popularity = data.popularity().astype(np.float64)
        self._fit(data)
        return self

    @abstractmethod
    def _fit(self, data: Interactions) -> None: ...

    @abstractmethod
    def _score(self, rows: np.ndarray) -> np.ndarray:
        """Dense scores (len(rows), n_products) for known rows (all >= 0)."""

    def params(self) -> dict[str, Any]:
        return {}

    def _arrays(self) -> dict[str, np.ndarray]:
        return {}

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        del arrays

    def score(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64)
        out = np.zeros((len(rows), len(self.product_ids)), dtype=np.float64)
        known = rows >= 0
        if known.any():
            out[known] = self._score(rows[known])
        return out

    def candidates(self, rows: np.ndarray, pool: int, exclude_seen: bool) -> Candidates:
        """Each row's `pool` best products by score, the rest bounded by the pool's lowest score. Models whose
        scores are sparse or shared override this without the dense scores; this default computes them."""
        raw = self.score(rows)
        top = raw.max(axis=1) if raw.shape[1] else np.zeros(len(rows))
        if exclude_seen:
            mask_seen(raw, self.seen, rows)
        return pool_of(raw, pool, np.arange(raw.shape[1]), None, top)

    # Models whose `candidates` need no dense scores rank through them; the rest score densely.
    ranks_by_candidates: ClassVar[bool] = False

    def covered_products(self) -> np.ndarray:
        """Product columns this model can score above zero (all of them unless it is restricted)."""
        return np.arange(len(self.product_ids))

    def candidate_width(self) -> int:
        """Columns of the widest dense array `candidates` builds per row (sizes the chunks)."""
        return len(self.product_ids)

    def popularity_order(self) -> np.ndarray:
        """Products by popularity, most popular first (the tie-break order), computed once per fitted model."""
        if self._order_of is not self.popularity:
            self._popularity_order = np.argsort(-self.popularity, kind="stable")
            self._order_of = self.popularity
        return self._popularity_order

    def recommend(self, rows: np.ndarray, k: int, exclude_seen: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Top-k product indices and their scores per row, best first (exactly the dense ranking either way)."""
        rows = np.asarray(rows, dtype=np.int64)
        k = min(k, len(self.product_ids))
        items = np.empty((len(rows), k), dtype=np.int64)
        scores = np.empty((len(rows), k), dtype=np.float64)
        step = min(CANDIDATE_CHUNK_ROWS, chunk_rows(self.candidate_width())) if self.ranks_by_candidates else \
            chunk_rows(len(self.product_ids))
        for start in range(0, len(rows), step):
            chunk = rows[start:start + step]
            top, best = self._top_chunk(chunk, k, exclude_seen)
            items[start:start + len(chunk)] = top
            scores[start:start + len(chunk)] = best
        return items, scores

    def _top_chunk(self, rows: np.ndarray, k: int, exclude_seen: bool) -> tuple[np.ndarray, np.ndarray]:
        if self.ranks_by_candidates:
            known = rows >= 0
            found = self.candidates(np.where(known, rows, 0), max(k, CANDIDATE_POOL), exclude_seen)
            found = found if known.all() else only_rows(found, known)
            seen = self.seen[np.where(known, rows, 0)] if exclude_seen else None
            if seen is not None and not known.all():
                seen = sp.csr_matrix(seen.multiply(known[:, None].astype(np.float32)))
            ranked = top_from_candidates(found, k, self.popularity, self.popularity_order(), seen)
            if ranked.exact.all():
                return ranked.items, ranked.scores
            inexact = np.flatnonzero(~ranked.exact)
            step = chunk_rows(len(self.product_ids))  # dense scores stay within the memory plan's chunk size
            for start in range(0, len(inexact), step):
                part = inexact[start:start + step]
                ranked.items[part], ranked.scores[part] = self.dense_top(rows[part], k, exclude_seen)
            return ranked.items, ranked.scores
        return self.dense_top(rows, k, exclude_seen)

    def dense_top(self, rows: np.ndarray, k: int, exclude_seen: bool) -> tuple[np.ndarray, np.ndarray]:
        """The ranking from dense scores: the definition the candidate route reproduces, and its fallback."""
        raw = self.score(rows)
        if exclude_seen:
            mask_seen(raw, self.seen, rows)
        top = top_k(raw, k, self.tie_break())
        return top, np.take_along_axis(raw, top, axis=1)

    def recommend_ids(self, customer_ids: np.ndarray, k: int, exclude_seen: bool = False) -> np.ndarray:
        rows = positions(self.customer_ids, np.asarray(customer_ids, dtype=str))
        items, _ = self.recommend(rows, k, exclude_seen)
        result: np.ndarray = self.product_ids[items]
        return result

    def tie_break(self) -> np.ndarray:
        top = self.popularity.max() if len(self.popularity) else 0.0
        return self.popularity / top if top > 0 else np.zeros_like(self.popularity)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "model.json").write_text(json.dumps({"model": self.name, "params": self.params()}, indent=2))
        arrays = {"customer_ids": self.customer_ids, "product_ids": self.product_ids, "popularity": self.popularity}
        arrays |= sparse_arrays("seen", self.seen.tocsr())
        arrays |= {f"model_{key}": value for key, value in self._arrays().items()}
        np.savez(folder / "arrays.npz", allow_pickle=False, **arrays)

    @staticmethod
    def load(folder: Path) -> Recommender:
        meta = json.loads((folder / "model.json").read_text())
        model = Recommender.registry[meta["model"]](**meta["params"])
        with np.load(folder / "arrays.npz", allow_pickle=False) as stored:
            arrays = {key: stored[key] for key in stored.files}
        model.customer_ids = arrays["customer_ids"]
        model.product_ids = arrays["product_ids"]
        model.popularity = arrays["popularity"]
        model.seen = sparse_from(arrays, "seen", model.shape)
        model._restore({key[len("model_"):]: value for key, value in arrays.items() if key.startswith("model_")})
        return model


def sparse_arrays(name: str, matrix: sp.csr_matrix) -> dict[str, np.ndarray]:
    """A CSR matrix as plain arrays for `save` (restored by `sparse_from`)."""
    return {f"{name}_data": matrix.data, f"{name}_indices": matrix.indices, f"{name}_indptr": matrix.indptr}


def sparse_from(arrays: dict[str, np.ndarray], name: str, shape: tuple[int, int]) -> sp.csr_matrix:
    return sp.csr_matrix((arrays[f"{name}_data"], arrays[f"{name}_indices"], arrays[f"{name}_indptr"]), shape=shape)

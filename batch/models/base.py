"""One small interface for every model: fit, score, recommend, save, load."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp

from batch.interactions import Interactions, positions

# Ties (common with counts and rules) are broken by popularity; this keeps the tie-break below any real gap.
TIE_BREAK_SCALE = 1e-9
SCORE_BATCH_ROWS = 1024


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

    def recommend(self, rows: np.ndarray, k: int, exclude_seen: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Top-k product indices and their scores per row, best first."""
        rows = np.asarray(rows, dtype=np.int64)
        k = min(k, len(self.product_ids))
        items = np.empty((len(rows), k), dtype=np.int64)
        scores = np.empty((len(rows), k), dtype=np.float64)
        for start in range(0, len(rows), SCORE_BATCH_ROWS):
            chunk = rows[start:start + SCORE_BATCH_ROWS]
            raw = self.score(chunk)
            if exclude_seen:
                mask_seen(raw, self.seen, chunk)
            top = top_k(raw, k, self.tie_break())
            items[start:start + len(chunk)] = top
            scores[start:start + len(chunk)] = np.take_along_axis(raw, top, axis=1)
        return items, scores

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


def top_k(scores: np.ndarray, k: int, tie_break: np.ndarray) -> np.ndarray:
    """Indices of the k best columns per row, best first; equal scores go to the more popular product."""
    span = np.where(np.isfinite(scores), np.abs(scores), 0.0).max(axis=1, keepdims=True)
    keyed = scores + tie_break[None, :] * TIE_BREAK_SCALE * np.where(span > 0, span, 1.0)
    if k < scores.shape[1]:
        part = np.argpartition(-keyed, k - 1, axis=1)[:, :k]
    else:
        part = np.tile(np.arange(scores.shape[1]), (scores.shape[0], 1))
    order = np.argsort(-np.take_along_axis(keyed, part, axis=1), axis=1, kind="stable")
    result: np.ndarray = np.take_along_axis(part, order, axis=1)
    return result


def mask_seen(scores: np.ndarray, seen: sp.csr_matrix, rows: np.ndarray) -> None:
    """Set the scores of products each row's customer already bought to -inf (rows of -1 are left alone)."""
    known = np.flatnonzero(rows >= 0)
    if len(known) == 0:
        return
    block = seen[rows[known]].tocoo()
    scores[known[block.row], block.col] = -np.inf

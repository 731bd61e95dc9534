"""Top-K ranking metrics, defined once. Each takes a ranked list and the customer's relevant set."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

METRICS = ("precision", "recall", "ndcg", "map", "hit_rate")


def precision_at(ranked: Sequence[Any], relevant: set[Any], k: int) -> float:
    """Hits in the first k, divided by k (a list shorter than k is not rewarded)."""
    return float(_hits(ranked, relevant, k).sum() / k)


def recall_at(ranked: Sequence[Any], relevant: set[Any], k: int) -> float:
    return float(_hits(ranked, relevant, k).sum() / len(relevant)) if relevant else 0.0


def ndcg_at(ranked: Sequence[Any], relevant: set[Any], k: int) -> float:
    """Binary gains, log2 discounts; the ideal list puts min(k, |relevant|) hits first."""
    hits = _hits(ranked, relevant, k)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = discounts[: min(k, len(relevant))].sum()
    return float((hits * discounts[: len(hits)]).sum() / ideal) if ideal > 0 else 0.0


def map_at(ranked: Sequence[Any], relevant: set[Any], k: int) -> float:
    """Average of precision at each hit's rank, divided by min(k, |relevant|)."""
    hits = _hits(ranked, relevant, k)
    if not relevant or not hits.any():
        return 0.0
    precisions = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float((precisions * hits).sum() / min(k, len(relevant)))


def hit_rate_at(ranked: Sequence[Any], relevant: set[Any], k: int) -> float:
    return float(_hits(ranked, relevant, k).any())


def coverage(recommended: Iterable[Sequence[Any]], catalog_size: int, k: int) -> float:
    """Share of the catalogue that appears in at least one top-k list."""
    distinct = {item for ranked in recommended for item in list(ranked)[:k]}
    return len(distinct) / catalog_size if catalog_size else 0.0


METRIC_FUNCTIONS = {
    "precision": precision_at, "recall": recall_at, "ndcg": ndcg_at, "map": map_at, "hit_rate": hit_rate_at,
}


def mean_metrics(ranked_lists: Sequence[Sequence[Any]], relevant_sets: Sequence[set[Any]], ks: Sequence[int],
                 catalog_size: int) -> dict[str, float]:
    """Every metric at every k, averaged over customers, keyed like 'ndcg@10'; plus 'coverage@k'."""
    out: dict[str, float] = {}
    for k in ks:
        for name, fn in METRIC_FUNCTIONS.items():
            values = [fn(r, rel, k) for r, rel in zip(ranked_lists, relevant_sets, strict=True)]
            out[f"{name}@{k}"] = float(np.mean(values)) if values else 0.0
        out[f"coverage@{k}"] = coverage(ranked_lists, catalog_size, k)
    return out


def _hits(ranked: Sequence[Any], relevant: set[Any], k: int) -> np.ndarray:
    return np.array([item in relevant for item in list(ranked)[:k]], dtype=float)


def hit_matrix(top: np.ndarray, relevant: sp.csr_matrix) -> np.ndarray:
    """hits[i, j] = 1 when top[i, j] (a column index) is in row i of `relevant`."""
    rows = np.repeat(np.arange(top.shape[0]), top.shape[1])
    found: np.ndarray = np.asarray(relevant[rows, top.ravel()]).reshape(top.shape) > 0
    return found


def batch_metrics(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> dict[str, float]:
    """The same definitions as the per-list functions above, for all customers at once."""
    hits = hits[:, :k].astype(float)
    if hits.shape[1] < k:
        hits = np.pad(hits, ((0, 0), (0, k - hits.shape[1])))
    n_hits = hits.sum(axis=1)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    ideal_len = np.minimum(k, n_relevant)
    ideal = np.concatenate([[0.0], np.cumsum(discounts)])[ideal_len]
    precisions = np.cumsum(hits, axis=1) / np.arange(1, k + 1)
    safe = np.where(ideal_len > 0, ideal_len, 1)
    return {
        f"precision@{k}": float(np.mean(n_hits / k)),
        f"recall@{k}": float(np.mean(np.where(n_relevant > 0, n_hits / np.maximum(n_relevant, 1), 0.0))),
        f"ndcg@{k}": float(np.mean(np.where(ideal > 0, (hits @ discounts) / np.where(ideal > 0, ideal, 1), 0.0))),
        f"map@{k}": float(np.mean((precisions * hits).sum(axis=1) / safe)),
        f"hit_rate@{k}": float(np.mean(n_hits > 0)),
    }


def per_customer_ndcg(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """NDCG@k of each customer (the mean of which `batch_metrics` reports), for paired comparisons."""
    hits = hits[:, :k].astype(float)
    if hits.shape[1] < k:
        hits = np.pad(hits, ((0, 0), (0, k - hits.shape[1])))
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.concatenate([[0.0], np.cumsum(discounts)])[np.minimum(k, n_relevant)]
    scores: np.ndarray = np.where(ideal > 0, (hits @ discounts) / np.where(ideal > 0, ideal, 1), 0.0)
    return scores

"""Stage one: a few hundred candidates per customer, the union of every generator's best. Each candidate carries
every generator's score there (relative to the generator's best for that customer) and its rank among that
generator's picks (one past the pool where it did not pick it)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from batch.models.base import Recommender

GENERATOR_POOL = 50  # picks per generator and customer; the union is at most this many per generator


@dataclass
class CandidateSet:
    """Pairs of a chunk of rows: `row` is the position in the chunk, `col` the product; `scores` and `ranks` have
    one column per generator, in `generators` order."""

    row: np.ndarray
    col: np.ndarray
    scores: np.ndarray
    ranks: np.ndarray
    generators: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.row)


def collect(generators: dict[str, Recommender], rows: np.ndarray, own: str, pool: int = GENERATOR_POOL
            ) -> CandidateSet:
    """For each row (of the generators' shared window): the `own` generator's picks among the customer's own
    products (all of them, for the repeat generator) and every other generator's `pool` best new products."""
    picks = {name: model.candidates(rows, pool, exclude_seen=name != own) for name, model in generators.items()}
    n_products = len(next(iter(generators.values())).product_ids)
    keys = np.unique(np.concatenate([found.row.astype(np.int64) * n_products + found.col
                                     for found in picks.values()] or [np.empty(0, dtype=np.int64)]))
    row, col = keys // n_products, keys % n_products
    scores = np.zeros((len(keys), len(picks)), dtype=np.float32)
    ranks = np.full((len(keys), len(picks)), pool + 1, dtype=np.float32)
    for g, found in enumerate(picks.values()):
        top = np.where(found.top > 0, found.top, 1.0)
        scores[:, g] = found.lookup(row, col) / top[row]
        order = np.lexsort((-found.score, found.row))
        first_of_row = np.searchsorted(found.row[order], found.row[order], side="left")
        rank = np.arange(len(order)) - first_of_row + 1
        at = np.searchsorted(keys, found.row[order].astype(np.int64) * n_products + found.col[order])
        ranks[at, g] = rank
    return CandidateSet(row, col, scores, ranks, tuple(picks))

"""Top-k without dense scores: candidates (a model's non-zero, pooled or bounded entries) and the exact top k
from them, the popularity tie-break that a dense ranking applies, and the helpers shared by the models' candidate
routes. `Recommender.recommend` ranks through these; the contract test checks it equals the dense ranking."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

# Ties (common with counts and rules) are broken by popularity; this keeps the tie-break below any real gap.
TIE_BREAK_SCALE = 1e-9
# Candidates a model hands the top-k for each row before the rest is bounded (see `Candidates`).
CANDIDATE_POOL = 100
CANDIDATE_CHUNK_ROWS = 1024
CONTENDER_BLOCK_CELLS = 8_000_000  # float64 cells the top-k may pad candidates into (with its two copies: 192 MB)


@dataclass
class Candidates:
    """A chunk of rows' scores in long form, for models whose scores are mostly zero or bounded: entry i says row
    `row[i]` (position in the chunk) scores `score[i]` for product `col[i]`. Every product without an entry scores
    at most `bound[r]` in row r, and exactly `bound[r]` where `rest_exact[r]`. Seen products are already dropped
    when the caller asked to exclude them. `lookup(rows, cols)` gives the exact score of any (row, product) pair
    (a blend needs each component's score at every other component's candidates). `top[r]` is the row's best
    score over every product, seen ones included (the hybrid scales by it, as the dense blend does)."""

    row: np.ndarray
    col: np.ndarray
    score: np.ndarray
    bound: np.ndarray
    rest_exact: np.ndarray
    lookup: Callable[[np.ndarray, np.ndarray], np.ndarray]
    top: np.ndarray

    @classmethod
    def sparse(cls, matrix: sp.csr_matrix) -> Candidates:
        """Every non-zero of `matrix` is an entry and every other product scores exactly zero."""
        matrix = sp.csr_matrix(matrix)
        matrix.eliminate_zeros()
        lookup = sorted_lookup(matrix)  # first: it sums duplicates (and sorts) in place
        coo = matrix.tocoo()
        n = matrix.shape[0]
        top = np.maximum(matrix.max(axis=1).toarray().ravel(), 0.0) if matrix.shape[1] else np.zeros(n)
        return cls(coo.row.astype(np.int64), coo.col.astype(np.int64), coo.data.astype(np.float64),
                   np.zeros(n), np.ones(n, dtype=bool), lookup, top)

    @classmethod
    def pooled(cls, matrix: sp.csr_matrix, pool: int, top: np.ndarray) -> Candidates:
        """Each row's `pool` largest non-zeros of `matrix` (scores >= 0, zero elsewhere) are its entries, with any
        tied with the smallest of them; every other product scores at most the largest score left out (exactly
        zero when no non-zero is left out), strictly less than every entry. Picked per row from the row's
        non-zeros, never from a dense rows x catalogue block."""
        matrix = sp.csr_matrix(matrix)
        matrix.eliminate_zeros()
        lookup = sorted_lookup(matrix)  # first: it sums duplicates (and sorts) in place
        n = matrix.shape[0]
        kept: list[np.ndarray] = []
        bound, exact = np.zeros(n), np.ones(n, dtype=bool)
        for r in range(n):
            start, end = matrix.indptr[r], matrix.indptr[r + 1]
            if end - start <= pool:
                kept.append(np.arange(start, end))
                continue
            values = matrix.data[start:end]
            threshold = np.partition(values, len(values) - pool)[len(values) - pool]
            kept.append(start + np.flatnonzero(values >= threshold))
            below = values[values < threshold]
            if len(below):
                bound[r], exact[r] = below.max(), False
        at = np.concatenate(kept) if kept else np.empty(0, dtype=np.int64)
        row = np.repeat(np.arange(n), [len(k) for k in kept]) if kept else np.empty(0, dtype=np.int64)

        return cls(row.astype(np.int64), matrix.indices[at].astype(np.int64), matrix.data[at].astype(np.float64),
                   bound, exact, lookup, top)

    @property
    def n_rows(self) -> int:
        return len(self.bound)

    def without(self, seen: sp.csr_matrix) -> Candidates:
        """Entries of products the row's customer bought dropped (`seen` is chunk rows x products)."""
        if len(self.row) == 0 or seen.nnz == 0:
            return self
        held = np.asarray(seen[self.row, self.col]).ravel() > 0
        return self.keep(~held)

    def keep(self, entries: np.ndarray) -> Candidates:
        return Candidates(self.row[entries], self.col[entries], self.score[entries], self.bound, self.rest_exact,
                          self.lookup, self.top)


def find_sorted(keys: np.ndarray, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each of `wanted` sits in the sorted `keys` and whether it is there (`at` is only meaningful where
    `hit`, and 0 everywhere when `keys` is empty)."""
    if not len(keys):
        return np.zeros(np.shape(wanted), dtype=np.int64), np.zeros(np.shape(wanted), dtype=bool)
    at = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
    return at, keys[at] == wanted


def sorted_lookup(matrix: sp.csr_matrix) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """The exact value of any (row, col) pairs of `matrix`, by binary search over its non-zeros' sorted keys.
    scipy's fancy indexing scans each asked row: 13x slower over rows of 9,000 non-zeros (a neighbourhood model's
    scores), measured for 215k pairs."""
    matrix.sum_duplicates()  # sorted indices, one entry per cell (duplicates summed, as indexing would)
    n_cols = matrix.shape[1]
    keys = np.repeat(np.arange(matrix.shape[0], dtype=np.int64), np.diff(matrix.indptr)) * n_cols + matrix.indices
    data = matrix.data

    def lookup(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        if not len(keys):
            return np.zeros(len(rows))
        at, hit = find_sorted(keys, np.asarray(rows, dtype=np.int64) * n_cols + cols)
        return np.where(hit, data[at], 0).astype(np.float64)

    return lookup


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


def pool_of(block: np.ndarray, pool: int, columns: np.ndarray, rest: float | None, top: np.ndarray) -> Candidates:
    """Candidates from dense scores over `columns` (-inf: excluded): each row's `pool` best. Products outside
    `columns` score exactly `rest` (None: there are none); `top` is each row's best score before exclusion."""
    n_rows, width = block.shape
    pool = min(pool, width)
    lookup = _block_lookup(block, columns, rest)
    if pool == 0:
        empty = np.empty(0, dtype=np.int64)
        return Candidates(empty, empty, np.empty(0), np.full(n_rows, -np.inf if rest is None else rest),
                          np.ones(n_rows, dtype=bool), lookup, top)
    # The largest `pool` sit after position width - pool (partitioning `block` itself saves negating a copy).
    best = np.argpartition(block, width - pool, axis=1)[:, width - pool:] if pool < width else \
        np.tile(np.arange(width), (n_rows, 1))
    values = np.take_along_axis(block, best, axis=1).astype(np.float64)
    finite = np.isfinite(values)
    # Outside the pool every score is at most the pool's lowest; a masked (-inf) pick means all the rest are too.
    inside = np.full(n_rows, -np.inf)
    if pool < width:
        inside = np.where(finite.all(axis=1), np.where(finite, values, np.inf).min(axis=1), -np.inf)
    if rest is None:
        bound, exact = inside, np.isneginf(inside)
    else:
        bound, exact = np.maximum(inside, rest), np.isneginf(inside)
    row = np.repeat(np.arange(n_rows), pool).reshape(best.shape)
    return Candidates(row[finite], columns[best[finite]], values[finite], bound, exact, lookup, top)


def _block_lookup(block: np.ndarray, columns: np.ndarray, rest: float | None
                  ) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    def lookup(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        at = np.clip(np.searchsorted(columns, cols), 0, max(len(columns) - 1, 0))
        inside = columns[at] == cols if len(columns) else np.zeros(len(cols), dtype=bool)
        values = np.full(len(cols), 0.0 if rest is None else rest)
        values[inside] = block[rows[inside], at[inside]]
        return values

    return lookup


@dataclass
class Ranked:
    items: np.ndarray  # rows x k product indices, best first
    scores: np.ndarray
    exact: np.ndarray  # per row: provably the dense ranking (the caller ranks the other rows densely)


def top_from_candidates(found: Candidates, k: int, popularity: np.ndarray, order: np.ndarray,
                        seen: sp.csr_matrix | None) -> Ranked:
    """The top k of each row from its candidates, ordered as `top_k` orders dense scores: by score, equal scores
    by popularity (`order`: products by popularity, most popular first).

    A row is exact when its k-th score beats the bound on every product without an entry, or when those products
    score exactly the bound: then the most popular of them fill the list, as the popularity tie-break would."""
    n, n_products = found.n_rows, len(popularity)
    entries = np.bincount(found.row, minlength=n)
    above = np.bincount(found.row[found.score > found.bound[found.row]], minlength=n)
    seen_count = np.diff(seen.indptr) if seen is not None else np.zeros(n, dtype=np.int64)
    # Rows short of k entries above the bound, whose rest is exact, take that many more of the most popular
    # products than they could lose to their own entries and purchases.
    fill_size = np.where(found.rest_exact & (above < k), np.minimum(k + entries + seen_count, n_products), 0)
    fill_rows = np.repeat(np.arange(n), fill_size)
    fill_cols = order[np.arange(len(fill_rows)) - np.repeat(np.cumsum(fill_size) - fill_size, fill_size)]
    fill_keys = fill_rows * n_products + fill_cols
    entry_keys = np.sort(found.row * n_products + found.col)
    _, drop = find_sorted(entry_keys, fill_keys)
    if seen is not None and seen.nnz and len(fill_keys):
        drop |= np.asarray(seen[fill_rows, fill_cols]).ravel() > 0
    fill_rows, fill_cols = fill_rows[~drop], fill_cols[~drop]
    contenders = _contenders(found.row, found.score, n, k)
    rows = np.concatenate([found.row[contenders], fill_rows])
    cols = np.concatenate([found.col[contenders], fill_cols])
    score = np.concatenate([found.score[contenders], found.bound[fill_rows]])
    by_rank = np.lexsort((-popularity[cols], -score, rows))
    rows, cols, score = rows[by_rank], cols[by_rank], score[by_rank]
    starts = np.searchsorted(rows, np.arange(n))
    counts = np.diff(np.append(starts, len(rows)))
    rank = np.arange(len(rows)) - np.repeat(starts, counts)
    take = rank < k
    items = np.zeros((n, k), dtype=np.int64)
    scores = np.full((n, k), -np.inf)
    items[rows[take], rank[take]] = cols[take]
    scores[rows[take], rank[take]] = score[take]
    kth = scores[:, k - 1] if k else np.full(n, np.inf)
    exact = (counts >= k) & np.isfinite(kth) & ((kth > found.bound) | found.rest_exact)
    return Ranked(items, scores, exact)


def _contenders(row: np.ndarray, score: np.ndarray, n_rows: int, k: int) -> np.ndarray | slice:
    """The entries at or above their row's k-th best entry score (ties kept): no other entry can be in the row's
    top k, so the sort that orders them need not see the rest (a blend has hundreds of entries per row). All of
    them when rows hold few entries, or when the padded rows x widest-row block would be too large."""
    counts = np.bincount(row, minlength=n_rows)
    widest = int(counts.max(initial=0))
    if k == 0 or widest <= 2 * k or n_rows * widest > CONTENDER_BLOCK_CELLS:
        return slice(None)
    order = np.argsort(row, kind="stable")
    position = np.empty(len(row), dtype=np.int64)
    position[order] = np.arange(len(row)) - np.repeat(np.cumsum(counts) - counts, counts)
    padded = np.full((n_rows, widest), -np.inf)
    padded[row, position] = score
    kth = -np.partition(-padded, k - 1, axis=1)[:, k - 1]  # -inf for rows with fewer than k entries
    kept: np.ndarray = score >= kth[row]
    return kept


def only_rows(found: Candidates, keep: np.ndarray) -> Candidates:
    """Rows not in `keep` (unknown customers) lose their entries and score exactly zero everywhere."""
    held = keep[found.row]
    lookup = found.lookup

    def known_only(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        return np.where(keep[rows], lookup(rows, cols), 0.0)

    return Candidates(found.row[held], found.col[held], found.score[held], np.where(keep, found.bound, 0.0),
                      np.where(keep, found.rest_exact, True), known_only, np.where(keep, found.top, 0.0))


def mask_seen(scores: np.ndarray, seen: sp.csr_matrix, rows: np.ndarray) -> None:
    """Set the scores of products each row's customer already bought to -inf (rows of -1 are left alone)."""
    known = np.flatnonzero(rows >= 0)
    if len(known) == 0:
        return
    block = seen[rows[known]].tocoo()
    scores[known[block.row], block.col] = -np.inf

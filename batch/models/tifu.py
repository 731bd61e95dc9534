"""TIFU-KNN (Hu, He, Chen, Anderson, Sun; SIGIR 2020, "Modeling Personalized Item Frequency Information for
Next-basket Recommendation"): a strong, simple next-basket baseline.

A customer's vector is their baskets (orders, binary) decayed in time: the baskets, newest first, are cut into
groups of `group_size`; inside a group a basket `q` places from the group's newest weighs `within_decay^q`, and
a group `g` groups from the newest weighs `group_decay^g`; each group is averaged over its baskets and the groups
over their number. The score is `alpha` x the customer's vector + (1 - alpha) x the mean vector of their
`neighbours` nearest customers (cosine similarity of the vectors; beyond 50,000 customers, cosine of their
64-dimensional randomised SVD embeddings, every customer's found at once among the customers of the clusters
nearest their own: `clustered_neighbours`)."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from implicit.cpu.topk import topk
from sklearn.utils.extmath import randomized_svd

from batch.interactions import Interactions
from batch.models.base import Recommender, sparse_arrays, sparse_from
from batch.models.topk import CANDIDATE_POOL, Candidates

EXACT_NEIGHBOURS_MAX = 50_000  # customers up to which neighbours are found exactly
EMBEDDING_DIMS = 64
# Beyond EXACT_NEIGHBOURS_MAX customers, every customer's neighbours are found at once, each among the customers of
# the PROBED_CLUSTERS clusters (spherical k-means of the embeddings, about sqrt(customers) of them) nearest its own:
# a brute-force search over all pairs grows with the square of the customers (minutes at 200k).
PROBED_CLUSTERS = 24
KMEANS_ITERATIONS = 10
SIMILARITY_CHUNK_ROWS = 256  # customers whose neighbours are found at once (a dense float32 chunk x customers block)
# Customers whose neighbours are kept once found (30 MB at 300 neighbours): an evaluation asks for the same
# customers' scores several times (each variant, the ranker's candidates, its report and intervals), and the
# search is most of a pass's cost. A full pass over a big shop's customers (the served lists) finds each once.
NEIGHBOUR_MEMO_ROWS = 25_000


class TifuKnnRecommender(Recommender):
    name = "tifu"
    ranks_by_candidates = True

    def __init__(self, group_size: int = 7, within_decay: float = 0.9, group_decay: float = 0.7,
                 alpha: float = 0.7, neighbours: int = 300) -> None:
        super().__init__()
        self.group_size = group_size
        self.within_decay = within_decay
        self.group_decay = group_decay
        self.alpha = alpha
        self.neighbours = neighbours
        self.vectors = sp.csr_matrix((0, 0), dtype=np.float32)
        self._lock = threading.Lock()  # guards the neighbours found (`_neighbours`)
        self._forget()

    def _forget(self) -> None:
        """Drops what was derived from the vectors: the normalised vectors and the neighbours found."""
        self._normed: sp.csr_matrix | None = None
        self._every: np.ndarray | None = None  # past EXACT_NEIGHBOURS_MAX customers: every customer's neighbours
        self._slot: np.ndarray | None = None  # per customer: where its neighbours are kept, -1 if not
        self._kept = np.empty((0, 0), dtype=np.int32)
        self._n_kept = 0

    def _fit(self, data: Interactions) -> None:
        self.vectors = customer_vectors(data, self.group_size, self.within_decay, self.group_decay)
        self._forget()

    def _mixed(self, rows: np.ndarray) -> sp.csr_matrix:
        """alpha x own vector + (1 - alpha) x the neighbours' mean, sparse, for `rows`."""
        own = sp.csr_matrix(self.vectors[rows])
        if self.alpha >= 1.0 or self.neighbours == 0 or len(self.customer_ids) < 2:
            return own * self.alpha
        k = min(self.neighbours, len(self.customer_ids) - 1)
        parts = []
        for start in range(0, len(rows), SIMILARITY_CHUNK_ROWS):
            chunk = rows[start:start + SIMILARITY_CHUNK_ROWS]
            nearest = self._neighbours(chunk, k)
            weights = sp.csr_matrix((np.full(nearest.size, 1.0 / k, dtype=np.float32),
                                     (np.repeat(np.arange(len(chunk)), k), nearest.ravel())),
                                    shape=(len(chunk), len(self.customer_ids)))
            parts.append(weights @ self.vectors)
        neighbours = sp.vstack(parts).tocsr() if parts else sp.csr_matrix((0, len(self.product_ids)))
        return (own * self.alpha + neighbours * (1.0 - self.alpha)).tocsr()

    def _neighbours(self, chunk: np.ndarray, k: int) -> np.ndarray:
        """Each row's k nearest other customers. Up to EXACT_NEIGHBOURS_MAX customers, exactly (`_nearest`), and
        kept once found while there is room for them; beyond, every customer's at once, by `clustered_neighbours`
        over their 64-dimensional randomised SVD embeddings (an exact search is a dense chunk x customers block per
        chunk: at 200k customers, minutes per pass). Safe from several threads (the served lists use them)."""
        if len(self.customer_ids) > EXACT_NEIGHBOURS_MAX:
            with self._lock:
                if self._every is None:
                    self._every = clustered_neighbours(self._embedding(), k)
            every: np.ndarray = self._every[chunk].astype(np.int64)
            return every
        nearest = np.empty((len(chunk), k), dtype=np.int64)
        with self._lock:
            if self._slot is None:
                self._slot = np.full(len(self.customer_ids), -1, dtype=np.int64)
                self._kept = np.empty((min(NEIGHBOUR_MEMO_ROWS, len(self.customer_ids)), k), dtype=np.int32)
            slots = self._slot[chunk]
            known = slots >= 0
            nearest[known] = self._kept[slots[known]]
        missing = np.flatnonzero(~known)
        if len(missing):
            nearest[missing] = self._nearest(chunk[missing], k)
            self._keep(chunk[missing], nearest[missing])
        return nearest

    def _keep(self, rows: np.ndarray, nearest: np.ndarray) -> None:
        """Keeps the neighbours of rows not kept yet, while there is room."""
        new, first = np.unique(rows, return_index=True)
        with self._lock:
            assert self._slot is not None
            fresh = self._slot[new] < 0  # another thread may have kept some meanwhile
            new, first = new[fresh], first[fresh]
            room = min(len(new), len(self._kept) - self._n_kept)
            at = np.arange(self._n_kept, self._n_kept + room)
            self._kept[at] = nearest[first[:room]]
            self._slot[new[:room]] = at
            self._n_kept += room

    def _nearest(self, chunk: np.ndarray, k: int) -> np.ndarray:
        """The k most similar other customers of each row of `chunk`: cosine of the vectors, exactly."""
        if self._normed is None:
            self._normed = _row_normalised(self.vectors)
        similar = (self._normed[chunk] @ self._normed.T).toarray()
        similar[np.arange(len(chunk)), chunk] = -np.inf  # not one's own neighbour
        nearest: np.ndarray = np.argpartition(-similar, k - 1, axis=1)[:, :k]
        return nearest

    def _embedding(self) -> np.ndarray:
        """The customers' unit 64-dimensional embeddings: randomised SVD of their normalised vectors."""
        normed = _row_normalised(self.vectors)
        dims = min(EMBEDDING_DIMS, min(normed.shape) - 1)
        left, singular, _ = randomized_svd(normed, dims, random_state=0)
        embedding = (left * singular).astype(np.float32)
        norms = np.linalg.norm(embedding, axis=1, keepdims=True)
        unit: np.ndarray = embedding / np.where(norms > 0, norms, 1.0)
        return unit

    def _score(self, rows: np.ndarray) -> np.ndarray:
        dense: np.ndarray = self._mixed(rows).toarray().astype(np.float64)
        return dense

    def candidate_width(self) -> int:
        return CANDIDATE_POOL

    def candidates(self, rows: np.ndarray, pool: int, exclude_seen: bool) -> Candidates:
        # The scores are sparse (the customer's and their neighbours' products): the pool is taken from each row's
        # non-zeros. A dense rows x catalogue block cost minutes per pass at 100k products.
        mixed = sp.csr_matrix(self._mixed(rows), dtype=np.float64)
        top = np.maximum(mixed.max(axis=1).toarray().ravel(), 0.0) if mixed.shape[1] else np.zeros(len(rows))
        if exclude_seen:
            mixed = sp.csr_matrix(mixed - mixed.multiply(self.seen[rows] > 0))
        return Candidates.pooled(mixed, pool, top)

    def params(self) -> dict[str, Any]:
        return {"group_size": self.group_size, "within_decay": self.within_decay, "group_decay": self.group_decay,
                "alpha": self.alpha, "neighbours": self.neighbours}

    def _arrays(self) -> dict[str, np.ndarray]:
        return sparse_arrays("vectors", self.vectors)

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        self.vectors = sparse_from(arrays, "vectors", self.shape)
        self._forget()


def customer_vectors(data: Interactions, group_size: int, within_decay: float, group_decay: float
                     ) -> sp.csr_matrix:
    """TIFU's personal item-frequency vectors (customers x products), from the window's orders."""
    lines = pd.DataFrame({"row": data.line_rows, "order": data.line_orders, "col": data.line_cols,
                          "event_time": data.lines["event_time"].to_numpy()})
    baskets = (lines[["row", "order", "event_time"]].drop_duplicates(["row", "order"])
               .sort_values(["row", "event_time", "order"], ascending=[True, False, False]))
    newest_first = baskets.groupby("row", sort=False).cumcount().to_numpy()
    n_baskets = baskets.groupby("row", sort=False)["order"].transform("size").to_numpy()
    group = newest_first // group_size
    n_groups = -(-n_baskets // group_size)
    # The oldest group may be short: it averages over the baskets it has.
    in_group = np.where(group == n_groups - 1, n_baskets - group * group_size, group_size)
    weight = (within_decay ** (newest_first % group_size)) * (group_decay ** group) / in_group / n_groups
    weights = baskets[["row", "order"]].assign(weight=weight)
    items = lines[["row", "order", "col"]].drop_duplicates()
    joined = items.merge(weights, on=["row", "order"], how="inner")
    return sp.csr_matrix((joined["weight"].to_numpy(dtype=np.float32),
                          (joined["row"].to_numpy(), joined["col"].to_numpy())), shape=data.shape)


def _row_normalised(matrix: sp.csr_matrix) -> sp.csr_matrix:
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sp.csr_matrix(sp.diags(1.0 / norms).astype(np.float32) @ matrix)


def clustered_neighbours(embedding: np.ndarray, k: int, probes: int = PROBED_CLUSTERS, seed: int = 0) -> np.ndarray:
    """Each row's `k` most similar other rows (inner products of unit rows, int32), searched cluster by cluster:
    a cluster's rows are compared with the rows of the `probes` clusters whose centroids are nearest its own (more
    while those hold at most `k` rows). Approximate: a neighbour in a cluster not probed is missed."""
    n = len(embedding)
    labels, centroids = spherical_kmeans(embedding, max(1, int(np.sqrt(n))), KMEANS_ITERATIONS, seed)
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(len(centroids) + 1))
    sizes = np.diff(bounds)
    nearest = np.empty((n, k), dtype=np.int32)
    for cluster in np.flatnonzero(sizes):
        members = order[bounds[cluster]:bounds[cluster + 1]]
        by_similarity = np.argsort(-(centroids @ centroids[cluster]), kind="stable")
        probed = np.concatenate([[cluster], by_similarity[by_similarity != cluster]])
        enough = int(np.searchsorted(np.cumsum(sizes[probed]), k + 1)) + 1  # clusters holding k + 1 rows
        pool = np.concatenate([order[bounds[c]:bounds[c + 1]] for c in probed[:max(probes, enough)]])
        similar = embedding[members] @ embedding[pool].T
        np.negative(similar, out=similar)
        picked = np.argpartition(similar, k, axis=1)[:, :k + 1]
        nearest[members] = _without_own(pool[picked], members, k)
    return nearest


def _without_own(picked: np.ndarray, rows: np.ndarray, k: int) -> np.ndarray:
    """k of each row's k + 1 picks: all but the row itself (or, where it was not picked, all but the last)."""
    own = picked == rows[:, None]
    keep = np.where(own.any(axis=1)[:, None], ~own, np.arange(k + 1)[None, :] < k)
    return picked[keep].reshape(len(rows), k)


def spherical_kmeans(rows: np.ndarray, n_clusters: int, iterations: int, seed: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Labels and unit centroids of unit `rows` (Lloyd's iterations on cosine similarity), seeded from a sample of
    the rows; a centroid that loses all its rows stays where it was."""
    n_clusters = min(n_clusters, len(rows))
    centroids = rows[np.random.default_rng(seed).choice(len(rows), n_clusters, replace=False)].copy()
    for _ in range(iterations):
        labels = topk(centroids, rows, 1, num_threads=0)[0].ravel()
        members = sp.csr_matrix((np.ones(len(rows), dtype=rows.dtype), (labels, np.arange(len(rows)))),
                                shape=(n_clusters, len(rows)))
        sums = np.asarray(members @ rows)
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        centroids = np.where(norms > 0, sums / np.where(norms > 0, norms, 1.0), centroids).astype(rows.dtype)
    return topk(centroids, rows, 1, num_threads=0)[0].ravel(), centroids

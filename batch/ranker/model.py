"""Stage two: LightGBM's LambdaMART (`objective="lambdarank"`) ranks each customer's candidates by their features.

Candidates (`batch.ranker.candidates`): the customer's own products (the repeat generator keeps all of them) and
the best new products of every other generator. Whether seen products are excluded or not, the candidates and
their features are the same; excluding them only masks, so the ranker is one scoring function of (customer,
product), as every model of `batch.models` is. Every product that is not a candidate scores exactly the row's
bound, below every candidate, and the popularity tie-break orders them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
import scipy.sparse as sp

from batch.interactions import Interactions
from batch.models.base import Recommender, chunk_rows
from batch.models.topk import CANDIDATE_POOL, Candidates, find_sorted, top_from_candidates
from batch.ranker.candidates import CandidateSet, collect
from batch.ranker.history import CYCLE_FEATURES, FEATURES, History

# The generators, by the names their fitted models have in the job (`batch.evaluation.tuning`), and the source each one
# is credited as when it puts a product on a served list (the API turns a source into a reason).
GENERATORS = ("repeat", "ease", "als", "nmf", "tifu", "rules", "popularity_recent", "trend")
SOURCES = {"repeat": "repeat", "ease": "ease", "als": "als", "nmf": "nmf", "tifu": "tifu", "rules": "rules",
           "popularity_recent": "popularity", "popularity": "popularity", "trend": "trend"}
OWN = "repeat"  # the generator whose candidates are the customer's own products, seen ones included
ROWS_PER_CHUNK = 1024


def feature_names(generators: Sequence[str]) -> list[str]:
    return [*FEATURES, *(f"{g}_score" for g in generators), *(f"{g}_rank" for g in generators)]


ABLATIONS: dict[str, tuple[str, ...]] = {
    # Which features a variant leaves out (evaluation.md: what each group is worth).
    "no buy-cycle features": CYCLE_FEATURES,
    "no generator scores": tuple(f"{g}_{kind}" for g in GENERATORS for kind in ("score", "rank")),
}


def candidate_features(generators: dict[str, Recommender], history: History, rows: np.ndarray
                       ) -> tuple[CandidateSet, np.ndarray]:
    """The candidates of `rows` (known rows of the generators' window) and their feature matrix."""
    found = collect(generators, rows, OWN)
    features = np.hstack([history.features(rows[found.row], found.col), found.scores, found.ranks])
    return found, features


@dataclass
class TrainingSet:
    features: np.ndarray
    labels: np.ndarray
    groups: np.ndarray  # candidates per customer, in order
    positives: int  # relevant products among the candidates
    relevant: int  # relevant products in all (the candidates' recall is positives / relevant)

    def dataset(self, columns: np.ndarray, reference: lgb.Dataset | None = None) -> lgb.Dataset:
        return lgb.Dataset(self.features[:, columns], self.labels, group=self.groups, reference=reference,
                           free_raw_data=False)

    def sample(self, max_groups: int, seed: int = 0) -> TrainingSet:
        """At most `max_groups` customers (a seeded sample, in their order) with all their candidates; the
        recall counts stay the whole set's."""
        if len(self.groups) <= max_groups:
            return self
        keep = np.zeros(len(self.groups), dtype=bool)
        keep[np.random.default_rng(seed).choice(len(self.groups), max_groups, replace=False)] = True
        rows = np.repeat(keep, self.groups)
        return TrainingSet(self.features[rows], self.labels[rows], self.groups[keep], self.positives, self.relevant)


def training_set(generators: dict[str, Recommender], history: History, rows: np.ndarray,
                 relevant: sp.csr_matrix) -> TrainingSet:
    """Candidates of `rows` labelled by `relevant` (rows x products: what each bought in the label window); only
    customers with at least one relevant candidate are kept (a group without one teaches LambdaMART nothing)."""
    parts_x, parts_y, groups = [], [], []
    positives = 0
    for start in range(0, len(rows), ROWS_PER_CHUNK):
        chunk = rows[start:start + ROWS_PER_CHUNK]
        found, features = candidate_features(generators, history, chunk)
        labels = np.asarray(relevant[start + found.row, found.col]).ravel() > 0
        per_row = np.bincount(found.row, minlength=len(chunk))
        hits = np.bincount(found.row, weights=labels, minlength=len(chunk))
        keep = hits[found.row] > 0
        parts_x.append(features[keep])
        parts_y.append(labels[keep].astype(np.float32))
        groups.append(per_row[hits > 0])
        positives += int(labels.sum())
    width = len(FEATURES) + 2 * len(generators)
    return TrainingSet(np.vstack(parts_x) if parts_x else np.empty((0, width), dtype=np.float32),
                       np.concatenate(parts_y) if parts_y else np.empty(0, dtype=np.float32),
                       np.concatenate(groups) if groups else np.empty(0, dtype=np.int64), positives,
                       int(relevant.nnz))


@dataclass
class ScoredRows:
    """The scored candidates of some rows (sorted, unique), row by row: the candidates of `rows[i]` are
    `cols[start[i]:start[i + 1]]` with `scores` alike."""

    rows: np.ndarray
    start: np.ndarray
    cols: np.ndarray
    scores: np.ndarray

    def gather(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """(position in `rows`, product, score) of every candidate of `rows`; None unless every row is kept."""
        at = np.clip(np.searchsorted(self.rows, rows), 0, max(len(self.rows) - 1, 0))
        if not len(self.rows) or not (self.rows[at] == rows).all():
            return None
        begin, end = self.start[at], self.start[at + 1]
        counts = end - begin
        position = np.repeat(np.arange(len(rows)), counts)
        index = np.repeat(begin - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts) + np.arange(counts.sum())
        return position, self.cols[index], self.scores[index]


class RankerRecommender(Recommender):
    """The generators fitted on one window, that window's `History`, and a trained booster over the features
    (`columns`: which of `feature_names(generators)` it was trained on)."""

    name = "ranker"
    ranks_by_candidates = True

    def __init__(self, components: dict[str, tuple[str, dict[str, Any]]] | None = None,
                 columns: list[int] | None = None) -> None:
        super().__init__()
        self.components = {key: (model, dict(params)) for key, (model, params) in (components or {}).items()}
        self.models: dict[str, Recommender] = {
            key: Recommender.registry[model](**params) for key, (model, params) in self.components.items()}
        self.columns = list(columns or [])
        self.booster: lgb.Booster | None = None
        self.history: History | None = None
        self._memo: ScoredRows | None = None

    @classmethod
    def of(cls, generators: dict[str, Recommender], history: History, booster: lgb.Booster,
           columns: Sequence[int]) -> RankerRecommender:
        ranker = cls({key: (m.name, m.params()) for key, m in generators.items()}, list(columns))
        ranker.models, ranker.history, ranker.booster = generators, history, booster
        first = next(iter(generators.values()))
        ranker.customer_ids, ranker.product_ids = first.customer_ids, first.product_ids
        ranker.seen, ranker.popularity = first.seen, first.popularity
        return ranker

    @property
    def sources(self) -> list[str]:
        """The source each generator is credited as on a served list."""
        return [SOURCES[name] for name in self.models]

    def _fit(self, data: Interactions) -> None:
        raise NotImplementedError("a ranker is trained by batch.ranker.train, on labels, not fitted on a window")

    def candidate_width(self) -> int:
        return max(model.candidate_width() for model in self.models.values())

    def ranked(self, rows: np.ndarray) -> tuple[CandidateSet, np.ndarray]:
        """Every candidate of `rows` (known rows) and the booster's score for it."""
        assert self.history is not None and self.booster is not None
        found, features = candidate_features(self.models, self.history, rows)
        return found, self.predicted(features) if len(found) else np.empty(0)

    def predicted(self, features: np.ndarray) -> np.ndarray:
        """The booster's score of each candidate's row of features (all of `feature_names`)."""
        assert self.booster is not None
        return np.asarray(self.booster.predict(features[:, self.columns]), dtype=np.float64)

    def remember(self, rows: np.ndarray) -> None:
        """Scores the candidates of `rows` (known rows) once and keeps them: an evaluation ranks the same customers
        several times (each variant, the report, the paired intervals), and collecting the candidates is most of
        the cost. Later calls over remembered rows read them back."""
        remember_together([self], rows)

    def scored(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(position in `rows`, product, booster score) of every candidate of `rows` (known rows), sorted by
        position then product: from what `remember` kept when it holds every row, computed otherwise."""
        if self._memo is not None and (kept := self._memo.gather(rows)) is not None:
            return kept
        found, scores = self.ranked(rows)
        return found.row, found.col, scores

    def candidates(self, rows: np.ndarray, pool: int, exclude_seen: bool) -> Candidates:
        del pool  # every candidate the generators give is scored; there are a few hundred per row
        return self._scored(rows, *self.scored(rows), exclude_seen)

    def _scored(self, rows: np.ndarray, found_row: np.ndarray, found_col: np.ndarray, scores: np.ndarray,
                exclude_seen: bool) -> Candidates:
        """The booster's scores of `rows`' candidates as `Candidates`: every other product at the row's bound."""
        n_rows, n_products = len(rows), len(self.product_ids)
        lowest = np.full(n_rows, np.inf)
        np.minimum.at(lowest, found_row, scores)
        bound = np.where(np.isfinite(lowest), lowest - 1.0, 0.0)
        top = bound.copy()
        np.maximum.at(top, found_row, scores)
        keys = found_row.astype(np.int64) * n_products + found_col

        def lookup(chunk_rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
            at, hit = find_sorted(keys, chunk_rows.astype(np.int64) * n_products + cols)
            return np.where(hit, scores[at] if len(keys) else 0.0, bound[chunk_rows])

        result = Candidates(found_row.astype(np.int64), found_col.astype(np.int64), scores, bound,
                            np.ones(n_rows, dtype=bool), lookup, top)
        return result.without(sp.csr_matrix(self.seen[rows])) if exclude_seen else result

    def _score(self, rows: np.ndarray) -> np.ndarray:
        found = self.candidates(rows, CANDIDATE_POOL, exclude_seen=False)
        dense = np.repeat(found.bound[:, None], len(self.product_ids), axis=1)
        dense[found.row, found.col] = found.score
        return dense

    def top_with_sources(self, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each row's top k (all items), scores scaled to [0, 1] per customer (what the API adds rule boosts to),
        and the generator each item is credited to: repeat for the customer's own products, otherwise the one that
        ranked it best among its picks (its index in `models`)."""
        names = list(self.models)
        own = names.index(OWN) if OWN in names else -1
        items = np.empty((len(rows), k), dtype=np.int64)
        scores = np.empty((len(rows), k))
        sources = np.empty((len(rows), k), dtype=np.int64)
        step = min(ROWS_PER_CHUNK, chunk_rows(self.candidate_width()))
        for start in range(0, len(rows), step):
            chunk = rows[start:start + step]
            found, raw = self.ranked(chunk)
            best = self._scored(chunk, found.row, found.col, raw, exclude_seen=False)
            ranked = top_from_candidates(best, k, self.popularity, self.popularity_order(), None)
            keys = found.row.astype(np.int64) * len(self.product_ids) + found.col
            chosen = np.arange(len(chunk))[:, None] * len(self.product_ids) + ranked.items
            at, hit = find_sorted(keys, chosen)
            credit = self._credit(chunk, found, own)
            filler = names.index("trend") if "trend" in names else 0  # a list filler is a best-seller
            sources[start:start + len(chunk)] = np.where(hit, credit[at] if len(found) else filler, filler)
            scores[start:start + len(chunk)] = _scaled(np.where(hit, raw[at] if len(raw) else 0.0, np.nan))
            items[start:start + len(chunk)] = ranked.items
        return items, scores, sources

    def _credit(self, rows: np.ndarray, found: CandidateSet, own: int) -> np.ndarray:
        """Per candidate, the generator credited with it: the customer's own product is repeat's; any other is the
        generator that ranked it best among its picks."""
        if not len(found):
            return np.empty(0, dtype=np.int64)
        others = found.ranks.copy()
        if own >= 0:
            others[:, own] = np.inf
        credit: np.ndarray = others.argmin(axis=1)
        if own >= 0:
            bought = np.asarray(self.seen[rows[found.row], found.col]).ravel() > 0
            credit = np.where(bought, own, credit)
        return credit

    def params(self) -> dict[str, Any]:
        return {"components": self.components, "columns": self.columns}

    def feature_importance(self) -> dict[str, float]:
        """Each feature's share of the booster's total gain."""
        assert self.booster is not None
        gains = self.booster.feature_importance(importance_type="gain")
        names = [feature_names(list(self.models))[c] for c in self.columns]
        total = float(gains.sum()) or 1.0
        return dict(sorted(((n, round(float(g) / total, 4)) for n, g in zip(names, gains, strict=True)),
                           key=lambda item: -item[1]))

    def _arrays(self) -> dict[str, np.ndarray]:
        assert self.history is not None and self.booster is not None
        arrays = {f"{key}__{name}": value for key, model in self.models.items()
                  for name, value in model._arrays().items()}
        arrays |= {f"history__{name}": value for name, value in self.history.arrays().items()}
        arrays["booster"] = np.frombuffer(self.booster.model_to_string().encode(), dtype=np.uint8)
        return arrays

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        for key, model in self.models.items():
            model.customer_ids, model.product_ids = self.customer_ids, self.product_ids
            model.seen, model.popularity = self.seen, self.popularity
            prefix = f"{key}__"
            model._restore({name[len(prefix):]: v for name, v in arrays.items() if name.startswith(prefix)})
        self.history = History.from_arrays({name[len("history__"):]: v for name, v in arrays.items()
                                            if name.startswith("history__")})
        self.booster = lgb.Booster(model_str=arrays["booster"].tobytes().decode())


def remember_together(rankers: Sequence[RankerRecommender], rows: np.ndarray) -> None:
    """`remember` for rankers over the same generators and history (a ranker and its ablations): the candidates
    and their features are collected once, and each booster scores them."""
    first = rankers[0]
    assert all(r.models is first.models and r.history is first.history for r in rankers), "one window's rankers"
    assert first.history is not None
    rows = np.unique(rows)
    counts, cols = [], []
    scores: list[list[np.ndarray]] = [[] for _ in rankers]
    step = min(ROWS_PER_CHUNK, chunk_rows(first.candidate_width()))
    for start in range(0, len(rows), step):
        chunk = rows[start:start + step]
        found, features = candidate_features(first.models, first.history, chunk)
        counts.append(np.bincount(found.row, minlength=len(chunk)))
        cols.append(found.col)
        for kept, ranker in zip(scores, rankers, strict=True):
            kept.append(ranker.predicted(features) if len(found) else np.empty(0))
    offsets = np.concatenate([[0], np.cumsum(np.concatenate(counts))]) if counts else np.zeros(1, dtype=np.int64)
    found_cols = np.concatenate(cols) if cols else np.empty(0, dtype=np.int64)
    for kept, ranker in zip(scores, rankers, strict=True):
        ranker._memo = ScoredRows(rows, offsets, found_cols, np.concatenate(kept) if kept else np.empty(0))


def _scaled(raw: np.ndarray) -> np.ndarray:
    """Each row's scores (NaN: not a candidate, a filler) mapped onto [0, 1], the best 1; fillers score 0."""
    low = np.nanmin(np.where(np.isnan(raw), np.inf, raw), axis=1, initial=np.inf)
    high = np.nanmax(np.where(np.isnan(raw), -np.inf, raw), axis=1, initial=-np.inf)
    width = np.where(high > low, high - low, 1.0)
    scaled = np.where(np.isnan(raw), 0.0, (raw - low[:, None]) / width[:, None])
    return np.round(np.clip(np.where(np.isfinite(scaled), scaled, 0.0), 0.0, 1.0), 6)


def describe(booster: lgb.Booster) -> dict[str, Any]:
    return {"trees": booster.num_trees(), "best_iteration": booster.best_iteration,
            "params": json.loads(json.dumps(booster.params, default=str))}

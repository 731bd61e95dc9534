"""The served model: a weighted blend of component models, each scaled to [0, 1] per customer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from batch.interactions import Interactions
from batch.models.base import Recommender, chunk_rows
from batch.models.topk import CANDIDATE_POOL, Candidates, find_sorted, top_from_candidates, top_k


@dataclass
class Parts:
    """The components' scaled scores at the union of their candidates (long form, as in `Candidates`, sorted by
    row then product), and per component and row the bound on every other product and whether the rest scores
    exactly that bound. Blending them is then exact on the union for any weights; the bounds say where a product
    outside it could still matter."""

    n_products: int
    row: np.ndarray
    col: np.ndarray
    values: dict[str, np.ndarray]
    bounds: dict[str, np.ndarray]
    exact: dict[str, np.ndarray]

    @property
    def keys(self) -> np.ndarray:
        keys: np.ndarray = self.row * self.n_products + self.col
        return keys

    def blend(self, weights: dict[str, float]) -> tuple[Candidates, np.ndarray]:
        """The blended candidates and, per entry, the index (in `values`' order) of the largest weighted part."""
        names = list(self.values)
        w = [weights.get(name, 0.0) for name in names]
        weighted = np.stack([w[i] * self.values[name] for i, name in enumerate(names)])
        n_rows = len(self.bounds[names[0]])
        bound = np.zeros(n_rows)
        exact = np.ones(n_rows, dtype=bool)
        for i, name in enumerate(names):
            if w[i] != 0:
                bound += w[i] * self.bounds[name]
                exact &= self.exact[name]
        total = weighted.sum(axis=0)
        keys = self.keys

        def lookup(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
            wanted = rows * self.n_products + cols
            at, found = find_sorted(keys, wanted)
            return np.where(found, total[at] if len(keys) else 0.0, bound[rows])

        # Its best score among what it saw (a hybrid is not itself blended, so this only needs to be an upper value).
        top = bound.copy()
        np.maximum.at(top, self.row, total)
        return Candidates(self.row, self.col, total, bound, exact, lookup, top), weighted.argmax(axis=0)


class HybridRecommender(Recommender):
    """`components` maps a name to (model name, its params); `weights` maps the same names to blend weights.
    A component's scores are divided by the customer's best score for it, so weights compare like with like."""

    name = "hybrid"
    ranks_by_candidates = True

    def __init__(self, components: dict[str, tuple[str, dict[str, Any]]], weights: dict[str, float]) -> None:
        super().__init__()
        self.components = {key: (model, dict(params)) for key, (model, params) in components.items()}
        self.weights = dict(weights)
        self.models: dict[str, Recommender] = {
            key: Recommender.registry[model](**params) for key, (model, params) in self.components.items()
        }

    @classmethod
    def of(cls, models: dict[str, Recommender], weights: dict[str, float]) -> HybridRecommender:
        """A hybrid over already fitted models (they must share the customers and products)."""
        hybrid = cls({key: (m.name, m.params()) for key, m in models.items()}, weights)
        hybrid.models = models
        first = next(iter(models.values()))
        hybrid.customer_ids, hybrid.product_ids = first.customer_ids, first.product_ids
        hybrid.seen, hybrid.popularity = first.seen, first.popularity
        return hybrid

    @property
    def sources(self) -> list[str]:
        """The source each component is credited as (its name: repeat, ease, rules, trend, ...)."""
        return list(self.models)

    def _fit(self, data: Interactions) -> None:
        for model in self.models.values():
            model.fit(data)

    def component_scores(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        """Each component's scaled scores; the API explains an item by its largest weighted part."""
        return {key: scale_rows(model.score(rows)) for key, model in self.models.items()}

    def _score(self, rows: np.ndarray) -> np.ndarray:
        total = np.zeros((len(rows), len(self.product_ids)))
        for key, scaled in self.component_scores(rows).items():
            total += self.weights.get(key, 0.0) * scaled
        return total

    def candidate_width(self) -> int:
        return max(model.candidate_width() for model in self.models.values())

    def parts(self, rows: np.ndarray, pool: int, exclude_seen: bool) -> Parts:
        """Every component's candidates for these (known) rows, scaled, looked up at the union of them all."""
        found = {key: model.candidates(rows, pool, exclude_seen) for key, model in self.models.items()}
        n_products = len(self.product_ids)
        keys = np.unique(np.concatenate([c.row * n_products + c.col for c in found.values()]))
        row, col = keys // n_products, keys % n_products
        values, bounds, exact = {}, {}, {}
        for key, c in found.items():
            positive = c.top > 0
            top = c.top
            divisor = np.where(positive, top, 1.0)
            values[key] = np.where(positive[row], np.clip(c.lookup(row, col) / divisor[row], 0.0, None), 0.0)
            bounds[key] = np.where(positive, np.clip(c.bound / divisor, 0.0, None), 0.0)
            exact[key] = c.rest_exact | ~positive
        return Parts(n_products, row, col, values, bounds, exact)

    def candidates(self, rows: np.ndarray, pool: int, exclude_seen: bool) -> Candidates:
        blended, _ = self.parts(rows, pool, exclude_seen).blend(self.weights)
        return blended

    def top_with_sources(self, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each row's top k (all items), their scores and the component that contributed most to each (its index
        in `models`); the served lists are built from this."""
        names = list(self.models)
        items = np.empty((len(rows), k), dtype=np.int64)
        scores = np.empty((len(rows), k))
        sources = np.empty((len(rows), k), dtype=np.int64)
        step = min(1024, chunk_rows(self.candidate_width()))
        for start in range(0, len(rows), step):
            chunk = rows[start:start + step]
            parts = self.parts(chunk, max(k, CANDIDATE_POOL), exclude_seen=False)
            blended, source = parts.blend(self.weights)
            ranked = top_from_candidates(blended, k, self.popularity, self.popularity_order(), None)
            # Products outside the union (list fillers) are credited like the dense blend credits a tie: to the
            # component with the largest weighted bound, the first one when all are zero.
            weighted_bounds = np.stack([self.weights.get(n, 0.0) * parts.bounds[n] for n in names])
            chosen_source = weighted_bounds.argmax(axis=0)[:, None].repeat(k, axis=1)
            entry_keys = parts.keys
            chosen_keys = np.arange(len(chunk))[:, None] * parts.n_products + ranked.items
            at, hit = find_sorted(entry_keys, chosen_keys)
            chosen_source[hit] = source[at[hit]]
            inexact = np.flatnonzero(~ranked.exact)
            if len(inexact):
                dense_items, dense_scores, dense_sources = self._dense_with_sources(chunk[inexact], k)
                ranked.items[inexact], ranked.scores[inexact] = dense_items, dense_scores
                chosen_source[inexact] = dense_sources
            items[start:start + len(chunk)] = ranked.items
            scores[start:start + len(chunk)] = ranked.scores
            sources[start:start + len(chunk)] = chosen_source
        return items, scores, sources

    def _dense_with_sources(self, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        scaled = self.component_scores(rows)
        weights = np.array([self.weights.get(name, 0.0) for name in self.models])
        parts = np.stack([scaled[name] for name in self.models]) * weights[:, None, None]
        total = parts.sum(axis=0)
        top = top_k(total, k, self.tie_break())
        return top, np.take_along_axis(total, top, axis=1), np.take_along_axis(parts.argmax(axis=0), top, axis=1)

    def params(self) -> dict[str, Any]:
        return {"components": self.components, "weights": self.weights}

    def _arrays(self) -> dict[str, np.ndarray]:
        return {f"{key}__{name}": value for key, model in self.models.items()
                for name, value in model._arrays().items()}

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        for key, model in self.models.items():
            model.customer_ids, model.product_ids = self.customer_ids, self.product_ids
            model.seen, model.popularity = self.seen, self.popularity
            prefix = f"{key}__"
            model._restore({name[len(prefix):]: v for name, v in arrays.items() if name.startswith(prefix)})


def scale_rows(scores: np.ndarray) -> np.ndarray:
    """Divide each row by its maximum; rows with no positive score become zero."""
    top = scores.max(axis=1, keepdims=True) if scores.shape[1] else np.zeros((len(scores), 1))
    scaled: np.ndarray = np.clip(np.where(top > 0, scores / np.where(top > 0, top, 1.0), 0.0), 0.0, None)
    return scaled

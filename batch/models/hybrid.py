"""The served model: a weighted blend of component models, each scaled to [0, 1] per customer."""

from __future__ import annotations

from typing import Any

import numpy as np

from batch.interactions import Interactions
from batch.models.base import Recommender


class HybridRecommender(Recommender):
    """`components` maps a name to (model name, its params); `weights` maps the same names to blend weights.
    A component's scores are divided by the customer's best score for it, so weights compare like with like."""

    name = "hybrid"

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

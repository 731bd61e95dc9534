"""Which models are compared, how their settings and the hybrid's weights are chosen (on validation only),
and the evaluation table they produce on the test period."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from batch.evaluation.metrics import batch_metrics, hit_matrix
from batch.evaluation.split import KS, VARIANTS, Holdout, TemporalSplit, Variant, coverage_of, evaluate
from batch.interactions import Interactions
from batch.memory import MemoryPlan
from batch.models import (
    AlsRecommender,
    EaseRecommender,
    HybridRecommender,
    NmfRecommender,
    PopularityRecommender,
    Recommender,
    RepeatRecommender,
    RulesRecommender,
    TifuKnnRecommender,
)
from batch.models.base import chunk_rows
from batch.models.hybrid import Parts
from batch.models.topk import CANDIDATE_CHUNK_ROWS, top_from_candidates

# Starting settings, picked by hand while developing on Online Retail (with the test period in view, so figures
# measured with them are not a clean estimate; `evaluate --tune` chooses on validation only and writes a params
# file that `batch run --params` uses). Blend weights are re-chosen on validation by every run regardless.
DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    "popularity": {"window_days": None},
    "popularity_recent": {"window_days": 90.0},
    "repeat": {"half_life_days": 90.0, "log_scale": True},
    "ease": {"l2": 300.0, "weighting": "binary"},
    "als": {"factors": 64, "regularization": 0.01, "alpha": 1.0, "weighting": "log_orders"},
    "nmf": {"factors": 32, "weighting": "log_orders", "iterations": 200},
    # The paper's settings for grocery-like data (Hu et al. 2020, Table 3 range): groups of 7 baskets, decays
    # 0.9 within and 0.7 across groups, 300 neighbours, alpha 0.7.
    "tifu": {"group_size": 7, "within_decay": 0.9, "group_decay": 0.7, "alpha": 0.7, "neighbours": 300},
    "rules": {"min_support": 0.005, "min_confidence": 0.05, "max_len": 2},
    "trend": {"window_days": 14.0},
}
MODEL_CLASSES: dict[str, type[Recommender]] = {
    "popularity": PopularityRecommender,
    "popularity_recent": PopularityRecommender,
    "repeat": RepeatRecommender,
    "ease": EaseRecommender,
    "als": AlsRecommender,
    "nmf": NmfRecommender,
    "tifu": TifuKnnRecommender,
    "rules": RulesRecommender,
    "trend": PopularityRecommender,
}
SEARCH_SPACE: dict[str, dict[str, list[Any]]] = {
    "popularity_recent": {"window_days": [7.0, 30.0, 90.0]},
    "repeat": {"half_life_days": [None, 30.0, 90.0, 180.0]},
    "ease": {"l2": [50.0, 200.0, 500.0], "weighting": ["binary", "log_orders"]},
    "als": {"factors": [32, 64, 128], "alpha": [1.0, 10.0, 40.0]},
    "nmf": {"factors": [16, 32, 64]},
    "tifu": {"alpha": [0.5, 0.7, 0.9], "group_decay": [0.6, 0.8], "neighbours": [100, 300]},
    "rules": {"min_support": [0.005, 0.01], "min_confidence": [0.05, 0.2]},
    "trend": {"window_days": [7.0, 14.0, 30.0]},
}
# The hybrid: the customer's own repeat purchases, EASE for discovery, rules fired by their basket, and what is
# selling now. Repeat's weight is fixed at 1; the others are found by coordinate ascent on validation.
HYBRID_COMPONENTS = ("repeat", "ease", "rules", "trend")
WEIGHT_GRID: dict[str, list[float]] = {
    "ease": [0.0, 0.05, 0.1, 0.2, 0.4, 0.8],
    "rules": [0.0, 0.05, 0.1, 0.2, 0.4],
    "trend": [0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.8],
}
MAX_ASCENT_PASSES = 3
# Customers the blend's weights are chosen on (a seeded sample of the validation customers beyond it): each of the
# ~40 blends tried ranks every one of them, and 5,000 tell weights apart as well as 20,000 at a quarter of the cost.
WEIGHT_TUNING_CUSTOMERS = 5_000
TOP_CANDIDATES = 100  # per component, when blends are tried on validation
BASELINES = ("popularity", "popularity_recent", "repeat", "ease", "als", "nmf", "tifu", "rules")
TUNING_METRIC = "ndcg@10"

Progress = Callable[[str], None]
Lists = dict[Variant, dict[str, np.ndarray]]  # per variant and model: the top max(KS) of each evaluated customer
Stage = Callable[[str], AbstractContextManager[object]]


def build(name: str, params: dict[str, Any], plan: MemoryPlan | None = None) -> Recommender:
    """The model with its chosen settings; the memory plan sets what it decides (EASE's products, precision)."""
    if plan is not None and name == "ease":
        params = params | {"max_items": plan.ease_items}
    return MODEL_CLASSES[name](**params)


@dataclass
class Tuned:
    """Everything validation decided: model settings, hybrid weights, and the scores behind each choice."""

    params: dict[str, dict[str, Any]] = field(default_factory=lambda: json.loads(json.dumps(DEFAULT_PARAMS)))
    weights: dict[str, float] = field(default_factory=lambda: {"repeat": 1.0, "ease": 0.1, "rules": 0.05,
                                                               "trend": 0.3})
    validation: dict[str, Any] = field(default_factory=dict)
    # The ranker validation chose (`Trained.settings`, and the features they index): the nights that do not
    # evaluate train it again on the latest window with these. Empty when none could be trained.
    ranker: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"params": self.params, "weights": self.weights, "validation": self.validation, "ranker": self.ranker}

    @classmethod
    def from_file(cls, path: Path) -> Tuned:
        data = json.loads(path.read_text())
        return cls(params=DEFAULT_PARAMS | data["params"], weights=data["weights"],
                   validation=data.get("validation", {}), ranker=data.get("ranker", {}))


def objective(scores: dict[Variant, float], reference: dict[Variant, float]) -> float:
    """Both variants count equally: each NDCG@10 relative to the best single model's on the same split."""
    return sum(scores[v] / reference[v] for v in VARIANTS if reference[v] > 0)


def _ndcg(model: Recommender, holdouts: dict[Variant, Holdout]) -> dict[Variant, float]:
    return {v: evaluate(model, h, ks=(10,))[0][TUNING_METRIC] for v, h in holdouts.items()}


def tune_models(split: TemporalSplit, tuned: Tuned, progress: Progress, plan: MemoryPlan | None = None,
                space: dict[str, dict[str, list[Any]]] | None = None,
                make: Callable[[str, dict[str, Any]], Recommender] | None = None) -> None:
    """Grid search of each model's settings on the validation split (over `space`, by default SEARCH_SPACE;
    `make` builds a model from its name and settings, by default `build` within the memory plan); the best sum
    of NDCG@10 over both variants is kept."""
    make = make or (lambda name, params: build(name, params, plan))
    for name, grid in (SEARCH_SPACE if space is None else space).items():
        best: tuple[float, dict[str, Any]] | None = None
        for values in itertools.product(*grid.values()):
            params = tuned.params[name] | dict(zip(grid, values, strict=True))
            scores = _ndcg(make(name, params).fit(split.train), split.holdouts)
            score = scores["all_items"] + scores["new_items"]
            progress(f"tune {name} {params}: ndcg@10 all {scores['all_items']:.4f} new {scores['new_items']:.4f}")
            if best is None or score > best[0]:
                best = (score, params)
        assert best is not None
        tuned.params[name] = best[1]
        tuned.validation.setdefault("models", {})[name] = {"params": best[1], "score": best[0]}


def tune_weights(split: TemporalSplit, tuned: Tuned, progress: Progress,
                 plan: MemoryPlan | None = None) -> dict[str, Recommender]:
    """Fit the components on the validation split's training side and pick blend weights. Returns the fitted
    single models, so their validation scores can be reported too."""
    fitted = {name: build(name, tuned.params[name], plan).fit(split.train)
              for name in dict.fromkeys((*BASELINES, *HYBRID_COMPONENTS))}
    choose_weights(split, {name: fitted[name] for name in BASELINES},
                   {name: fitted[name] for name in HYBRID_COMPONENTS}, WEIGHT_GRID, tuned, progress)
    return fitted


def choose_weights(split: TemporalSplit, singles: dict[str, Recommender], components: dict[str, Recommender],
                   grid: dict[str, list[float]], tuned: Tuned, progress: Progress) -> None:
    """Coordinate ascent over `grid` from `tuned.weights` (components outside the grid keep their weight), scored
    by `objective` against the best of `singles`, all fitted on the validation split's training side."""
    holdouts = {variant: holdout.sample(WEIGHT_TUNING_CUSTOMERS) for variant, holdout in split.holdouts.items()}
    scores = {name: _ndcg(model, holdouts) for name, model in singles.items()}
    reference = {v: max(s[v] for s in scores.values()) for v in VARIANTS}
    blend = _Blend(holdouts, components)
    weights = dict(tuned.weights)
    best = objective(blend.ndcg(weights), reference)
    for _ in range(MAX_ASCENT_PASSES):
        start_of_pass = weights
        for name, values in grid.items():
            for value in values:
                candidate = weights | {name: value}
                score = objective(blend.ndcg(candidate), reference)
                if score > best:
                    best, weights = score, candidate
        progress(f"hybrid weights {weights}: objective {best:.4f}")
        if weights == start_of_pass:
            break
    tuned.weights = weights
    tuned.validation |= {"split": str(split.split.date()), "singles": scores, "reference": reference,
                         "hybrid": blend.ndcg(weights), "objective": best}


class _Blend:
    """Component scores at their candidates computed once per variant, so trying a weight costs a blend and a
    top-k, not a refit. Rows the candidates cannot rank exactly for some weights are ranked densely."""

    def __init__(self, holdouts: dict[Variant, Holdout], models: dict[str, Recommender]) -> None:
        self.holdouts = holdouts
        self.models = models
        self.hybrid = HybridRecommender.of(models, {})
        step = min(CANDIDATE_CHUNK_ROWS, chunk_rows(self.hybrid.candidate_width()))
        self.chunks: dict[Variant, list[tuple[np.ndarray, Parts]]] = {
            v: [(h.rows[i:i + step], self.hybrid.parts(h.rows[i:i + step], TOP_CANDIDATES, h.exclude_seen))
                for i in range(0, len(h.rows), step)]
            for v, h in holdouts.items()}

    def ndcg(self, weights: dict[str, float]) -> dict[Variant, float]:
        out: dict[Variant, float] = {}
        hybrid = HybridRecommender.of(self.models, weights)
        order = hybrid.popularity_order()
        for variant, holdout in self.holdouts.items():
            tops = []
            for rows, parts in self.chunks[variant]:
                blended, _ = parts.blend(weights)
                seen = hybrid.seen[rows] if holdout.exclude_seen else None
                ranked = top_from_candidates(blended, 10, hybrid.popularity, order, seen)
                inexact = np.flatnonzero(~ranked.exact)
                if len(inexact):
                    ranked.items[inexact] = hybrid.dense_top(rows[inexact], 10, holdout.exclude_seen)[0]
                tops.append(ranked.items)
            top = np.concatenate(tops) if tops else np.empty((0, 10), dtype=np.int64)
            out[variant] = batch_metrics(hit_matrix(top, holdout.relevant), holdout.n_relevant, 10)[TUNING_METRIC]
        return out


def hybrid_of(fitted: dict[str, Recommender], weights: dict[str, float]) -> HybridRecommender:
    return HybridRecommender.of({name: fitted[name] for name in HYBRID_COMPONENTS}, weights)


def fit_models(train: Interactions, tuned: Tuned, stage: Stage,
               plan: MemoryPlan | None = None) -> dict[str, Recommender]:
    """Every compared model fitted on one training window, the hybrid over the fitted components last."""
    fitted: dict[str, Recommender] = {}
    for name in dict.fromkeys((*BASELINES, *HYBRID_COMPONENTS)):
        with stage(f"fit {name}"):
            fitted[name] = build(name, tuned.params[name], plan).fit(train)
    models = {name: fitted[name] for name in BASELINES}
    models["hybrid"] = hybrid_of(fitted, tuned.weights)
    return models


def evaluation_table(split: TemporalSplit, models: dict[str, Recommender]
                     ) -> tuple[dict[str, dict[str, Any]], Lists]:
    """rows[variant][model] = metrics at K in KS, on the test period; and the lists they were computed from."""
    table: dict[str, dict[str, Any]] = {}
    lists: Lists = {}
    for variant, holdout in split.holdouts.items():
        for name, model in models.items():
            table.setdefault(variant, {})[name], lists.setdefault(variant, {})[name] = evaluate(model, holdout, KS)
    return table, lists


def coverage_table(data: Interactions, models: dict[str, Recommender]) -> dict[str, dict[str, float]]:
    """Per model: the products it covers and the share of lines and customers they account for."""
    return {name: coverage_of(model, data) for name, model in models.items()}

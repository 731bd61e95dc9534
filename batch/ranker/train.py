"""Training the ranker: LambdaMART on one labelled window, early-stopped and its settings chosen on another (the
validation window), never on the test period. `refit` trains again on the latest window with the number of
trees validation chose (what the nightly run serves)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np

from batch.ranker.model import TrainingSet

BASE_PARAMS: dict[str, Any] = {
    "objective": "lambdarank", "metric": "ndcg", "eval_at": [10], "learning_rate": 0.05,
    "feature_fraction": 0.8, "bagging_fraction": 0.8, "bagging_freq": 1, "lambdarank_truncation_level": 20,
    "verbose": -1, "seed": 7, "deterministic": True, "force_row_wise": True, "num_threads": 0,
}
# Chosen on validation: small and large trees, and how many customers a leaf needs.
GRID: list[dict[str, Any]] = [{"num_leaves": 15, "min_data_in_leaf": 20}, {"num_leaves": 31, "min_data_in_leaf": 50},
                              {"num_leaves": 63, "min_data_in_leaf": 100}]
MAX_ROUNDS = 2000
PATIENCE = 50  # rounds without a better validation NDCG@10 before stopping
MIN_GROUPS = 20  # customers with a relevant candidate, in each window
MIN_POSITIVES = 50
# Past this many training customers the settings are chosen on a seeded sample of them, and only the chosen one is
# trained on all: the grid costs about one full training instead of three.
GRID_MAX_GROUPS = 2_000


class Untrainable(Exception):
    """Too little to learn from (few labelled customers, no repeat purchases, ...): the blend is served instead."""


@dataclass
class Trained:
    booster: lgb.Booster
    columns: list[int]
    params: dict[str, Any]
    best_iteration: int
    validation_ndcg: float  # NDCG@10 over the validation window's candidates (LightGBM's, for choosing)
    tried: list[dict[str, Any]] = field(default_factory=list)

    def settings(self) -> dict[str, Any]:
        """What `refit` needs again, as JSON (a params file keeps it for the nights that do not evaluate)."""
        return {"params": self.params, "trees": self.best_iteration, "columns": self.columns}

    def summary(self) -> dict[str, Any]:
        return {"params": {k: self.params[k] for k in ("num_leaves", "min_data_in_leaf", "learning_rate")},
                "trees": self.best_iteration, "validation_ndcg@10_on_candidates": round(self.validation_ndcg, 4),
                "tried": self.tried}


def check(dataset: TrainingSet, window: str) -> None:
    if len(dataset.groups) < MIN_GROUPS or dataset.positives < MIN_POSITIVES:
        raise Untrainable(f"the {window} window has {len(dataset.groups)} customers with a relevant candidate and "
                          f"{dataset.positives} relevant candidates (at least {MIN_GROUPS} and {MIN_POSITIVES} "
                          "are needed)")


def train(training: TrainingSet, validation: TrainingSet, columns: list[int],
          grid: list[dict[str, Any]] | None = None, grid_max_groups: int = GRID_MAX_GROUPS) -> Trained:
    """The best of `grid` (default GRID) by validation NDCG@10, each early-stopped on the validation window;
    chosen on a sample of `grid_max_groups` training customers when there are more, then trained on all."""
    check(training, "training")
    check(validation, "validation")
    grid = GRID if grid is None else grid
    if len(grid) > 1 and len(training.groups) > grid_max_groups:
        chosen = _best(training.sample(grid_max_groups), validation, columns, grid)
        final = _best(training, validation, columns, [{k: chosen.params[k] for k in grid[0]}])
        final.tried = ([{**t, "customers": grid_max_groups} for t in chosen.tried]
                       + [{**t, "customers": len(training.groups)} for t in final.tried])
        return final
    return _best(training, validation, columns, grid)


def _best(training: TrainingSet, validation: TrainingSet, columns: list[int], grid: list[dict[str, Any]]
          ) -> Trained:
    train_data = training.dataset(np.asarray(columns))
    valid_data = validation.dataset(np.asarray(columns), reference=train_data)
    best: Trained | None = None
    tried = []
    for setting in grid:
        params = BASE_PARAMS | setting
        booster = lgb.train(params, train_data, num_boost_round=MAX_ROUNDS, valid_sets=[valid_data],
                            callbacks=[lgb.early_stopping(PATIENCE, verbose=False)])
        score = float(booster.best_score["valid_0"]["ndcg@10"])
        tried.append({k: setting[k] for k in ("num_leaves", "min_data_in_leaf")}
                     | {"trees": booster.best_iteration, "validation_ndcg@10": round(score, 4)})
        if best is None or score > best.validation_ndcg:
            best = Trained(booster, list(columns), params, booster.best_iteration, score)
    assert best is not None
    best.tried = tried
    return best


def refit(latest: TrainingSet, settings: dict[str, Any]) -> lgb.Booster:
    """Trained again on the latest labelled window, with the settings and tree count validation chose
    (`Trained.settings`)."""
    check(latest, "latest")
    data = latest.dataset(np.asarray(settings["columns"]))
    return lgb.train(settings["params"], data, num_boost_round=max(int(settings["trees"]), 1))

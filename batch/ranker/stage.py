"""The ranker's part of the nightly job. Windows of the history, each a cut-off and the `L` days after it (L: the
validation period's length), never reaching the test period:

- training: generators fitted on what precedes each of the `windows` cut-offs before the validation period
  (V - L, V - 2L, ...), labelled by what was bought in the L days after;
- validation: the generators the blend's weights were chosen with (fitted before V), labelled by the validation
  period: early stopping and the choice of settings;
- test: the generators fitted before the test split score the test period, as every model of the table;
- the nightly refit: the same booster settings and tree count, trained on the test split's features labelled by
  the test period (the latest window), then served with generators fitted on everything.

Engine-agnostic: whichever generators an engine fitted (of `GENERATORS`) are the ranker's, and its features are
computed in the driver from them."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from batch.evaluation.metrics import batch_metrics, hit_matrix, per_customer_ndcg
from batch.evaluation.split import Holdout, TemporalSplit, Variant
from batch.evaluation.tuning import Lists
from batch.interactions import Interactions
from batch.models.base import Recommender
from batch.ranker.history import History
from batch.ranker.model import (
    ABLATIONS,
    GENERATORS,
    RankerRecommender,
    TrainingSet,
    feature_names,
    remember_together,
    training_set,
)
from batch.ranker.train import Trained, Untrainable, train
from common.data.errors import DataError
from common.data.membership import is_in

Fit = Callable[[Interactions], dict[str, Recommender]]
Progress = Callable[[str], None]
RECALL_AT = 100
Z_95 = 1.959963984540054


def generators_of(models: dict[str, Recommender]) -> dict[str, Recommender]:
    """The fitted generators among a job's models (a blend's components count too)."""
    found: dict[str, Recommender] = {}
    for name, model in models.items():
        for key, part in getattr(model, "models", {name: model}).items():
            if key in GENERATORS and key not in found:
                found[key] = part
    return {name: found[name] for name in GENERATORS if name in found}


def labelled(generators: dict[str, Recommender], train: Interactions, holdout: Holdout) -> TrainingSet:
    return training_set(generators, History.of(train), holdout.rows, holdout.relevant)


@dataclass
class RankerOutcome:
    """What the evaluation decided about the ranker: trained (with its ablations) or why not."""

    trained: Trained | None = None
    reason: str | None = None  # why the blend is served instead
    ablations: dict[str, Trained] = field(default_factory=dict)
    cutoffs: list[str] = field(default_factory=list)
    generators: list[str] = field(default_factory=list)
    training_rows: int = 0
    latest: TrainingSet | None = None  # the latest window's labelled candidates (what the nightly refit trains on)
    report: dict[str, Any] = field(default_factory=dict)  # recall, importance, paired intervals (on test)
    reported: dict[str, Any] | None = None  # an earlier evaluation's summary, read back (a night that refits)

    @property
    def usable(self) -> bool:
        """Whether the ranker is served: trained here, or by the evaluation read back."""
        return self.trained is not None or bool(self.reported and self.reported.get("trained"))

    def give_up(self, reason: str) -> None:
        self.trained, self.reported, self.reason, self.latest = None, None, reason, None

    def summary(self) -> dict[str, Any]:
        if not self.usable:
            return {"trained": False, "reason": self.reason}
        if self.reported is not None:
            return self.reported
        assert self.trained is not None
        return {"trained": True, "generators": self.generators, "training_cutoffs": self.cutoffs,
                "training_rows": self.training_rows, **self.trained.summary(),
                "ablations": {name: t.summary() for name, t in self.ablations.items()}, **self.report}

    def settings(self) -> dict[str, Any]:
        """What a night that does not evaluate needs to train the ranker again (`Tuned.ranker`); {} untrained."""
        if self.trained is None:
            return {}
        return {"generators": self.generators, "features": feature_names(self.generators), **self.trained.settings()}


def train_ranker(lines: pd.DataFrame, validation: TemporalSplit, length: pd.Timedelta,
                 validation_generators: dict[str, Recommender], fit: Fit, windows: int, max_customers: int | None,
                 progress: Progress, ablations: bool = True, fit_max_customers: int | None = None) -> RankerOutcome:
    """Training windows (each `length` long) before the validation period; early stopping and settings on it.
    Each window (the validation one too) labels at most `max_customers` customers, a seeded sample past it.
    Beyond `fit_max_customers` customers, each window's generators are fitted (and its customers labelled) on a
    seeded sample of that many customers' histories: a window teaches the ranker how to weigh the generators'
    scores and ranks, which a sample shows as well, and a full fit per window is what a big shop cannot afford."""
    generators = list(validation_generators)
    if len(generators) < 2:
        return RankerOutcome(reason=f"only {len(generators)} candidate generator(s) fitted")
    valid = labelled(validation_generators, validation.train, sampled(validation.holdouts["all_items"], max_customers))
    lines = customer_sample(lines, fit_max_customers)
    start = lines["event_time"].min()
    sets, cutoffs = [], []
    for k in range(1, windows + 1):
        cut = validation.split - k * length
        if cut - start < length:  # each window's generators need at least as much history as it labels
            break
        try:
            split = TemporalSplit.at(lines, cut, end=cut + length, max_customers=max_customers)
        except DataError:
            break
        sets.append(labelled(fit(split.train), split.train, split.holdouts["all_items"]))
        cutoffs.append(str(cut.date()))
        progress(f"ranker window from {cut.date()}: {len(sets[-1].groups):,} customers, "
                 f"{len(sets[-1].labels):,} candidates, recall of the candidates "
                 f"{sets[-1].positives / max(sets[-1].relevant, 1):.3f}")
    if not sets:
        return RankerOutcome(reason="no training window: less history before the validation period than one "
                                    "label window")
    training = TrainingSet(np.vstack([s.features for s in sets]), np.concatenate([s.labels for s in sets]),
                           np.concatenate([s.groups for s in sets]), sum(s.positives for s in sets),
                           sum(s.relevant for s in sets))
    names = feature_names(generators)
    try:
        trained = train(training, valid, list(range(len(names))))
        without = {name: train(training, valid, [i for i, n in enumerate(names) if n not in dropped],
                               grid=[trained.params])
                   for name, dropped in ABLATIONS.items()} if ablations else {}
    except Untrainable as exc:
        return RankerOutcome(reason=str(exc), cutoffs=cutoffs)
    progress(f"ranker: {trained.best_iteration} trees, validation NDCG@10 on candidates {trained.validation_ndcg:.4f}")
    return RankerOutcome(trained, None, without, cutoffs, generators, len(training.labels))


class StaleSettings(Exception):
    """The ranker's settings read back index other features than this run's generators give."""


def latest_window(lines: pd.DataFrame, split: pd.Timestamp, fit: Fit, settings: dict[str, Any],
                  max_customers: int | None, fit_max_customers: int | None, progress: Progress) -> TrainingSet:
    """For a night that does not evaluate: the candidates of at most `max_customers` customers labelled by what
    they bought from `split` on, from generators fitted before it on a seeded sample of `fit_max_customers`
    customers' histories, as the training windows are (a full fit here is what the nightly refit cannot afford).
    Raises StaleSettings when the ranker's `settings` (`RankerOutcome.settings`) were made for other features."""
    window = TemporalSplit.at(customer_sample(lines, fit_max_customers), split, max_customers=max_customers)
    generators = fit(window.train)
    if settings.get("features") != feature_names(list(generators)):
        raise StaleSettings("the ranker's settings were chosen over other features than this run's generators give")
    found = labelled(generators, window.train, window.holdouts["all_items"])
    progress(f"latest window from {split.date()}: {len(found.groups):,} customers, {len(found.labels):,} "
             f"candidates, recall of the candidates {found.positives / max(found.relevant, 1):.3f}")
    return found


def sampled(holdout: Holdout, max_customers: int | None) -> Holdout:
    return holdout if max_customers is None else holdout.sample(max_customers)


def customer_sample(lines: pd.DataFrame, max_customers: int | None, seed: int = 0) -> pd.DataFrame:
    """The lines of a seeded sample of `max_customers` customers; all of them when there are no more."""
    customers = lines["customer_id"].unique()
    if max_customers is None or len(customers) <= max_customers:
        return lines
    sample = np.random.default_rng(seed).choice(np.sort(customers.astype(str)), max_customers, replace=False)
    return lines[is_in(lines["customer_id"], pd.Series(sample))]


def test_rows(outcome: RankerOutcome, generators: dict[str, Recommender], split: TemporalSplit
              ) -> dict[str, RankerRecommender]:
    """The ranker and its ablations over the test split's generators (rows of the evaluation table), each with
    the evaluated customers' candidates scored once (the table, the report and the intervals read them)."""
    if outcome.trained is None:
        return {}
    history = History.of(split.train)
    rows = {
        "ranker": RankerRecommender.of(generators, history, outcome.trained.booster, outcome.trained.columns)}
    for name, trained in outcome.ablations.items():
        rows[f"ranker ({name})"] = RankerRecommender.of(generators, history, trained.booster, trained.columns)
    evaluated = np.concatenate([holdout.rows for holdout in split.holdouts.values()])
    remember_together(list(rows.values()), evaluated)
    return rows


def test_report(ranker: RankerRecommender, generators: dict[str, Recommender], lists: Lists,
                baselines: Sequence[str], holdouts: Mapping[Variant, Holdout]) -> dict[str, Any]:
    """Candidate recall@100 per generator and of the ranker's whole candidate set, the ranker's feature importance,
    and paired 95% intervals of its NDCG@10 against each baseline, per variant (from the evaluation's `lists`)."""
    holdout = holdouts["all_items"]
    recall = {name: _recall(model, holdout) for name, model in generators.items()}
    position, product, _ = ranker.scored(holdout.rows)
    hits = np.asarray(holdout.relevant[position, product]).ravel() > 0
    per_row = np.bincount(position[hits], minlength=len(holdout.rows))
    recall["all candidates"] = float(np.mean(per_row / np.maximum(holdout.n_relevant, 1)))
    paired = {variant: paired_ndcg(lists[variant], ranker.name, [b for b in baselines if b in lists[variant]], h)
              for variant, h in holdouts.items()}
    return {"candidate_recall@100": {k: round(v, 4) for k, v in recall.items()},
            "candidates_per_customer": round(len(position) / max(len(holdout.rows), 1), 1),
            "feature_importance": ranker.feature_importance(), "paired_ndcg@10": paired}


def _recall(model: Recommender, holdout: Holdout) -> float:
    top, _ = model.recommend(holdout.rows, RECALL_AT)
    return batch_metrics(hit_matrix(top, holdout.relevant), holdout.n_relevant, RECALL_AT)[f"recall@{RECALL_AT}"]


def paired_ndcg(lists: Mapping[str, np.ndarray], ours: str, baselines: Sequence[str], holdout: Holdout
                ) -> dict[str, dict[str, float]]:
    """Per baseline: the mean difference of per-customer NDCG@10 (`ours` - baseline) with its normal 95% interval,
    from each model's ranked list of the holdout's customers (the first 10 of the evaluation table's lists)."""
    def ndcg(name: str) -> np.ndarray:
        return per_customer_ndcg(hit_matrix(lists[name][:, :10], holdout.relevant), holdout.n_relevant, 10)

    mine = ndcg(ours)
    out = {}
    for name in baselines:
        diff = mine - ndcg(name)
        half = Z_95 * float(diff.std(ddof=1)) / np.sqrt(len(diff)) if len(diff) > 1 else float("nan")
        mean = float(diff.mean()) if len(diff) else 0.0
        out[name] = {"difference": round(mean, 4), "ci_low": round(mean - half, 4), "ci_high": round(mean + half, 4),
                     "customers": len(diff)}
    return out

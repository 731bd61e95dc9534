"""`recsys batch run --engine spark`: the nightly job with its heavy models fitted by Spark.

Spark fits ALS (MLlib, implicit feedback, in EASE's place in the blend) and mines the rules (pairs counted,
FPGrowth for longer antecedents) over the cleaned history, which the driver stages as Parquet once per run.
Everything else is the single-machine code run in the driver: EDA, splits, the models that are linear in the lines
(popularity, repeat, trend), weight tuning on validation, metrics, segments, reports, and the versioned publish
into Redis.

Entry points: `run_spark` (the whole job, as the CLI and benchmarks call it) and `evaluate_spark` (the evaluation
only, with the single-machine models in the same table)."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyspark

from batch.evaluation.result import Evaluation, EvaluationOptions
from batch.evaluation.split import TemporalSplit
from batch.evaluation.tuning import DEFAULT_PARAMS, WEIGHT_GRID, Stage, Tuned, build, choose_weights, tune_models
from batch.interactions import Interactions
from batch.memory import MemoryPlan
from batch.models import HybridRecommender, Recommender
from batch.pipeline import RunResult, evaluate_history, run
from batch.publish import Publishing
from batch.spark.history import SparkHistory
from batch.spark.models import SparkAlsRecommender, SparkRulesRecommender
from batch.spark.session import SparkOptions, StageProgress, jvm_peak_rss_mib, spark_session
from batch.stages import Stages
from common.data.load import LoadedData
from common.keys import KeyLayout
from common.redis_clients import SyncRedis

Progress = Callable[[str], None]

# Starting settings of the Spark-fitted models; the rules share the single-machine "rules" entry. ALS's alpha and
# weighting are the best of SPARK_SEARCH_SPACE on Online Retail's validation split (train before 2011-10-09;
# `recsys batch evaluate --engine spark --tune`, docs/scaling.md); the optimum lies inside the grid.
SPARK_PARAMS: dict[str, dict[str, Any]] = {
    "spark_als": {"factors": 64, "regularization": 0.1, "alpha": 1.0, "weighting": "log_orders", "iterations": 10,
                  "seed": 42},
}
SPARK_SEARCH_SPACE: dict[str, dict[str, list[Any]]] = {
    "spark_als": {"alpha": [0.3, 1.0, 3.0], "weighting": ["binary", "log_orders"]},
}
# The served blend: the customer's own repeat purchases, ALS for discovery, rules fired by their basket, and what
# sells now; component -> the params entry it is built from.
COMPONENTS = {"repeat": "repeat", "als": "spark_als", "rules": "rules", "trend": "trend"}
WEIGHTS = {"repeat": 1.0, "als": 0.4, "rules": 0.05, "trend": 0.3}
GRID = {"als": WEIGHT_GRID["ease"], "rules": WEIGHT_GRID["rules"], "trend": WEIGHT_GRID["trend"]}
# Linear in the lines, so the driver fits them as the single-machine engine does.
DRIVER_MODELS = ("popularity", "popularity_recent", "repeat", "trend")
DRIVER_BASELINES = ("popularity", "popularity_recent", "repeat")
# Fitted beside the Spark models when engines are compared on one split (`implicit`'s ALS is "als").
SINGLE_MACHINE_MODELS = ("ease", "als", "rules")
SPARK_LABELS = {"als": "als (spark)", "rules": "rules (spark)"}


def _unrecorded(_name: str) -> AbstractContextManager[object]:
    return nullcontext()


class SparkEngine:
    """Fits the Spark models on the staged history and the light ones in the driver (see the module docstring).
    With `compare`, the evaluation table also holds the single-machine EASE, ALS (`implicit`) and rules, fitted on
    the same split."""

    name = "spark"

    def __init__(self, history: SparkHistory, compare: bool = False) -> None:
        self.history = history
        self.compare = compare

    def details(self) -> dict[str, str]:
        return {"spark": pyspark.__version__, "spark_master": str(self.history.session.sparkContext.master)}

    def initial(self, params_file: Path | None) -> Tuned:
        """Default settings, overridden by a params file's entries; its weights are the starting blend only if
        they are this blend's."""
        tuned = Tuned(params=json.loads(json.dumps(DEFAULT_PARAMS | SPARK_PARAMS)), weights=dict(WEIGHTS))
        if params_file is not None:
            stored = json.loads(params_file.read_text())
            tuned.params |= stored["params"]
            if set(stored.get("weights", {})) == set(COMPONENTS):
                tuned.weights = stored["weights"]
        return tuned

    def tune_models(self, split: TemporalSplit, tuned: Tuned, progress: Progress, plan: MemoryPlan) -> None:
        """Grid search of the Spark ALS settings (the rules and the driver's models keep theirs: tune them with
        the single-machine engine and pass its params file)."""
        tune_models(split, tuned, progress, plan, SPARK_SEARCH_SPACE, lambda name, params: self._make(name, params,
                                                                                                     plan))

    def _make(self, name: str, params: dict[str, Any], plan: MemoryPlan) -> Recommender:
        if name == "spark_als":
            return SparkAlsRecommender(**params, history=self.history)
        if name == "spark_rules":
            return SparkRulesRecommender(**params, history=self.history)
        return build(name, params, plan)

    def tune_weights(self, split: TemporalSplit, tuned: Tuned, progress: Progress,
                     plan: MemoryPlan) -> dict[str, Recommender]:
        fitted = self._fit_all(split.train, tuned, _unrecorded, DRIVER_MODELS, plan)
        components = self._components(fitted)
        singles = {name: fitted[name] for name in DRIVER_BASELINES} | {
            label: components[key] for key, label in SPARK_LABELS.items()}
        choose_weights(split, singles, components, GRID, tuned, progress)
        return components | {"popularity_recent": fitted["popularity_recent"]}

    def fit_models(self, train: Interactions, tuned: Tuned, stage: Stage, plan: MemoryPlan) -> dict[str, Recommender]:
        fitted = self._fit_all(train, tuned, stage, DRIVER_MODELS + (SINGLE_MACHINE_MODELS if self.compare else ()),
                               plan)
        components = self._components(fitted)
        models = {name: fitted[name] for name in DRIVER_BASELINES}
        if self.compare:
            models |= {name: fitted[name] for name in SINGLE_MACHINE_MODELS}
        models |= {label: components[key] for key, label in SPARK_LABELS.items()}
        models["hybrid"] = HybridRecommender.of(components, tuned.weights)
        return models

    def generators(self, models: dict[str, Recommender]) -> dict[str, Recommender]:
        """The Spark blend's components (its ALS and rules, the driver's repeat and trend) and recent best-sellers:
        the ranker's features are computed in the driver from them, as on a single machine."""
        hybrid = models["hybrid"]
        assert isinstance(hybrid, HybridRecommender)
        return hybrid.models | {"popularity_recent": models["popularity_recent"]}

    def fit_generators(self, data: Interactions, tuned: Tuned, plan: MemoryPlan) -> dict[str, Recommender]:
        fitted = self._fit_all(data, tuned, _unrecorded, ("repeat", "trend", "popularity_recent"), plan)
        return self._components(fitted) | {"popularity_recent": fitted["popularity_recent"]}

    def served_blend(self, generators: dict[str, Recommender], tuned: Tuned) -> HybridRecommender:
        return HybridRecommender.of({name: generators[name] for name in COMPONENTS}, tuned.weights)

    def _fit_all(self, train: Interactions, tuned: Tuned, stage: Stage, driver: tuple[str, ...],
                 plan: MemoryPlan) -> dict[str, Recommender]:
        """The driver's models by name, then the Spark ones under their component keys prefixed "spark:"."""
        fitted: dict[str, Recommender] = {}
        for name in dict.fromkeys(driver):
            with stage(f"fit {name}"):
                fitted[name] = build(name, tuned.params[name], plan).fit(train)
        with stage("fit als (spark)"):
            fitted["spark:als"] = self._make("spark_als", tuned.params["spark_als"], plan).fit(train)
        with stage("fit rules (spark)"):
            fitted["spark:rules"] = self._make("spark_rules", tuned.params["rules"], plan).fit(train)
        return fitted

    @staticmethod
    def _components(fitted: dict[str, Recommender]) -> dict[str, Recommender]:
        return {"repeat": fitted["repeat"], "als": fitted["spark:als"], "rules": fitted["spark:rules"],
                "trend": fitted["trend"]}


@dataclass
class SparkRun:
    result: RunResult
    jvm_peak_rss_mib: float | None  # the driver JVM's (and, in local mode, the executors'); None if unknown


def run_spark(data: LoadedData, options: EvaluationOptions, spark: SparkOptions, artifacts: Path,
              client: SyncRedis | None, keys: KeyLayout, stages: Stages, progress: Progress,
              publishing: Publishing | None = None) -> SparkRun:
    """The whole nightly job on Spark (`pipeline.run` with the Spark engine): starts a session on
    `spark.master`, stages `data.lines` as Parquet under `spark.staging`, evaluates, refits on everything,
    writes the artifacts and publishes into Redis from the driver (`client=None`: artifacts only)."""
    with spark_session(spark) as session, StageProgress(session, progress):
        progress(f"spark {pyspark.__version__} on {session.sparkContext.master} "
                 f"({session.sparkContext.defaultParallelism} cores)")
        with stages.stage("stage history as Parquet"):
            history = SparkHistory.stage(session, data.lines, spark.staging)
        try:
            result = run(data, options, artifacts, client, keys, stages, progress, publishing, SparkEngine(history))
        finally:
            history.remove()
        return SparkRun(result, jvm_peak_rss_mib())


def evaluate_spark(lines: pd.DataFrame, options: EvaluationOptions, spark: SparkOptions, out: Path, stages: Stages,
                   progress: Progress, customers: pd.DataFrame | None = None) -> Evaluation:
    """The evaluation alone, with the single-machine EASE, ALS and rules in the same table as the Spark models
    (and, with a customers table, the demographic cold start)."""
    with spark_session(spark) as session, StageProgress(session, progress):
        with stages.stage("stage history as Parquet"):
            history = SparkHistory.stage(session, lines, spark.staging)
        try:
            return evaluate_history(lines, options, out, stages, progress, customers=customers,
                                    engine=SparkEngine(history, compare=True))
        finally:
            history.remove()

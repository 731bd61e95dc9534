"""Where the job's models are fitted: the contract (`Engine`) every engine meets, and `SingleMachine`, the
default. The job around them (`batch.pipeline`) and the Spark engine (`batch.spark`) depend on this module, not on
each other's internals."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from batch.evaluation.split import TemporalSplit
from batch.evaluation.tuning import HYBRID_COMPONENTS, Stage, Tuned, build, fit_models, tune_models, tune_weights
from batch.interactions import Interactions
from batch.memory import MemoryPlan
from batch.models import HybridRecommender, Recommender
from batch.ranker.model import GENERATORS
from batch.ranker.stage import generators_of

Progress = Callable[[str], None]


class EngineUnavailable(RuntimeError):
    """An engine cannot run here: a package or runtime it needs is missing, or it did not start."""


class Engine(Protocol):
    """Where the models are fitted. Everything around them (EDA, splits, metrics, segments, reports, publish) is
    the same code for every engine."""

    name: str

    def details(self) -> dict[str, str]:
        """What the model card adds under `built_with` (versions, where it ran)."""

    def initial(self, params_file: Path | None) -> Tuned:
        """The starting settings and weights (a params file overrides the settings it names)."""

    def tune_models(self, split: TemporalSplit, tuned: Tuned, progress: Progress, plan: MemoryPlan) -> None:
        """Grid search of model settings on the validation split."""

    def tune_weights(self, split: TemporalSplit, tuned: Tuned, progress: Progress,
                     plan: MemoryPlan) -> dict[str, Recommender]:
        """Choose the hybrid's blend weights on the validation split; returns the ranker's generators it fitted
        there (the ranker's validation features come from them)."""

    def fit_models(self, train: Interactions, tuned: Tuned, stage: Stage, plan: MemoryPlan) -> dict[str, Recommender]:
        """Every model of the evaluation table, by row label; the served blend is the row "hybrid"."""

    def generators(self, models: dict[str, Recommender]) -> dict[str, Recommender]:
        """The ranker's candidate generators among `fit_models`' models."""

    def fit_generators(self, data: Interactions, tuned: Tuned, plan: MemoryPlan) -> dict[str, Recommender]:
        """The ranker's candidate generators (the blend's components among them) fitted on `data`."""

    def served_blend(self, generators: dict[str, Recommender], tuned: Tuned) -> HybridRecommender:
        """The blend over fitted generators (served when no ranker could be trained)."""


class SingleMachine:
    """Every model fitted in this process (numpy, scipy, scikit-learn, implicit, mlxtend, LightGBM)."""

    name = "single-machine"

    def details(self) -> dict[str, str]:
        return {}

    def initial(self, params_file: Path | None) -> Tuned:
        return Tuned.from_file(params_file) if params_file else Tuned()

    def tune_models(self, split: TemporalSplit, tuned: Tuned, progress: Progress, plan: MemoryPlan) -> None:
        tune_models(split, tuned, progress, plan)

    def tune_weights(self, split: TemporalSplit, tuned: Tuned, progress: Progress,
                     plan: MemoryPlan) -> dict[str, Recommender]:
        return generators_of(tune_weights(split, tuned, progress, plan))

    def fit_models(self, train: Interactions, tuned: Tuned, stage: Stage, plan: MemoryPlan) -> dict[str, Recommender]:
        return fit_models(train, tuned, stage, plan)

    def generators(self, models: dict[str, Recommender]) -> dict[str, Recommender]:
        return generators_of(models)

    def fit_generators(self, data: Interactions, tuned: Tuned, plan: MemoryPlan) -> dict[str, Recommender]:
        return {name: build(name, tuned.params[name], plan).fit(data) for name in GENERATORS}

    def served_blend(self, generators: dict[str, Recommender], tuned: Tuned) -> HybridRecommender:
        return HybridRecommender.of({name: generators[name] for name in HYBRID_COMPONENTS}, tuned.weights)

"""The nightly job: explore, evaluate (temporal split, weights chosen on validation), refit on everything,
segment, and publish a versioned model into Redis."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pandas as pd
import redis

from batch import eda
from batch.bundle import build_bundle, category_rules
from batch.case_study import in_sample_precision
from batch.evaluate import TemporalSplit
from batch.experiment import (
    HYBRID_COMPONENTS,
    Stage,
    Tuned,
    build,
    evaluation_table,
    fit_models,
    tune_models,
    tune_weights,
)
from batch.interactions import Interactions
from batch.models import HybridRecommender, Recommender
from batch.publish import PublishResult, new_version, publish
from batch.reports import export_recommendations, model_card, write_evaluation
from batch.segments import rfm_table, segment_summary
from batch.stages import Stages
from common.data.errors import DataError
from common.data.load import LoadedData
from common.keys import KeyLayout

Progress = Callable[[str], None]


@dataclass
class EvaluationOptions:
    split_date: pd.Timestamp | None = None
    validation_date: pd.Timestamp | None = None
    test_days: int = 30
    tune: bool = False
    params_file: Path | None = None
    export_recs: Path | None = None
    case_study: bool = True


@dataclass
class Evaluation:
    split: str
    validation_split: str
    end: str
    table: dict[str, dict[str, dict[str, float]]]
    tuned: Tuned
    case_study: dict[str, Any] | None
    files: list[Path] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {"split": self.split, "validation_split": self.validation_split, "end": self.end,
                "table": self.table, "tuned": self.tuned.to_dict(), "case_study": self.case_study}


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

    def tune_models(self, split: TemporalSplit, tuned: Tuned, progress: Progress) -> None:
        """Grid search of model settings on the validation split."""

    def tune_weights(self, split: TemporalSplit, tuned: Tuned, progress: Progress) -> None:
        """Choose the hybrid's blend weights on the validation split."""

    def fit_models(self, train: Interactions, tuned: Tuned, stage: Stage) -> dict[str, Recommender]:
        """Every model of the evaluation table, by row label; the served blend is the row "hybrid"."""

    def fit_served(self, full: Interactions, tuned: Tuned) -> HybridRecommender:
        """The hybrid that is published, fitted on all the data."""


class SingleMachine:
    """Every model fitted in this process (numpy, scipy, scikit-learn, mlxtend)."""

    name = "single-machine"

    def details(self) -> dict[str, str]:
        return {}

    def initial(self, params_file: Path | None) -> Tuned:
        return Tuned.from_file(params_file) if params_file else Tuned()

    def tune_models(self, split: TemporalSplit, tuned: Tuned, progress: Progress) -> None:
        tune_models(split, tuned, progress)

    def tune_weights(self, split: TemporalSplit, tuned: Tuned, progress: Progress) -> None:
        tune_weights(split, tuned, progress)

    def fit_models(self, train: Interactions, tuned: Tuned, stage: Stage) -> dict[str, Recommender]:
        return fit_models(train, tuned, stage)

    def fit_served(self, full: Interactions, tuned: Tuned) -> HybridRecommender:
        fitted = {name: build(name, tuned.params[name]).fit(full) for name in HYBRID_COMPONENTS}
        return HybridRecommender.of(fitted, tuned.weights)


def split_dates(lines: pd.DataFrame, options: EvaluationOptions) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Test = [split, end]; validation = [validation, split) and ends before the test period starts."""
    end = lines["event_time"].max().normalize()
    split = options.split_date or end - pd.Timedelta(days=options.test_days)
    validation = options.validation_date or split - pd.Timedelta(days=options.test_days)
    if not validation < split:
        raise DataError(f"validation split {validation.date()} must be before the test split {split.date()}")
    return split, validation


def evaluate_history(lines: pd.DataFrame, options: EvaluationOptions, out: Path, stages: Stages,
                     progress: Progress, engine: Engine | None = None) -> Evaluation:
    engine = engine or SingleMachine()
    split, validation = split_dates(lines, options)
    tuned = engine.initial(options.params_file)
    with stages.stage("validation split"):
        validation_split = TemporalSplit.at(lines, validation, end=split)
    if options.tune:
        with stages.stage("tune model settings"):
            engine.tune_models(validation_split, tuned, progress)
    with stages.stage("tune hybrid weights"):
        engine.tune_weights(validation_split, tuned, progress)
    with stages.stage("test split"):
        test_split = TemporalSplit.at(lines, split)
    models = engine.fit_models(test_split.train, tuned, stages.stage)
    with stages.stage("evaluate"):
        table = evaluation_table(test_split, models)
    case_study = None
    if options.case_study:
        with stages.stage("case-study protocol"):
            case_study = in_sample_precision(lines)
    result = Evaluation(split=str(split.date()), validation_split=str(validation.date()),
                        end=str(test_split.end), table=table, tuned=tuned, case_study=case_study)
    result.files = write_evaluation(result, out)
    if options.export_recs:
        result.files.append(export_recommendations(models["hybrid"], test_split, options.export_recs))
    return result


@dataclass
class RunResult:
    version: str
    folder: Path
    evaluation: Evaluation
    published: PublishResult | None


def run(data: LoadedData, options: EvaluationOptions, artifacts: Path, client: redis.Redis | None,
        keys: KeyLayout, stages: Stages, progress: Progress, keep_versions: int = 3,
        engine: Engine | None = None) -> RunResult:
    """The whole nightly job. With `client=None` nothing is published (artifacts only)."""
    engine = engine or SingleMachine()
    lines = data.lines
    version = new_version()
    folder = artifacts / "models" / version
    with stages.stage("eda"):
        summary = eda.explore(lines)
        eda.plot(lines, summary, folder)
        (folder / "eda.json").write_text(json.dumps(summary, indent=2))
        data.report.write_json(folder / "cleaning_report.json")
    evaluation = evaluate_history(lines, options, folder, stages, progress, engine)
    with stages.stage("fit on all data"):
        full = Interactions.from_lines(lines)
        hybrid = engine.fit_served(full, evaluation.tuned)
        hybrid.save(folder / "hybrid")
    with stages.stage("segments"):
        segments = rfm_table(lines)
        seg_summary = segment_summary(segments)
        segments.to_csv(folder / "segments.csv", index=False)
        eda.plot_segments(seg_summary, folder)
    with stages.stage("category rules"):
        top_category_rules = category_rules(lines)
    card = model_card(version, data, summary, evaluation, seg_summary, full, engine.name, engine.details())
    (folder / "model_card.json").write_text(json.dumps(card, indent=2, default=str))
    published = None
    if client is not None:
        with stages.stage("publish"):
            bundle = build_bundle(version, card, hybrid, lines, top_category_rules, segments, seg_summary)
            published = publish(client, keys, bundle, keep=keep_versions)
    return RunResult(version=version, folder=folder, evaluation=evaluation, published=published)

"""The nightly job: explore, evaluate (temporal split, weights chosen on validation), refit on everything,
segment, and publish a versioned model into Redis."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import redis

from batch import eda
from batch.bundle import build_bundle, category_rules
from batch.case_study import in_sample_precision
from batch.evaluate import TemporalSplit
from batch.experiment import (
    HYBRID_COMPONENTS,
    Tuned,
    build,
    coverage_table,
    evaluation_table,
    fit_models,
    tune_models,
    tune_weights,
)
from batch.interactions import Interactions
from batch.memory import DataShape, MemoryPlan
from batch.models import HybridRecommender
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
    memory_gb: float = 8.0  # RECSYS_BATCH_MEMORY_GB
    ease_max_items: int = 20_000  # RECSYS_BATCH_EASE_MAX_ITEMS
    eval_max_customers: int | None = 20_000  # RECSYS_BATCH_EVAL_MAX_CUSTOMERS

    def plan(self, lines: pd.DataFrame) -> MemoryPlan:
        return MemoryPlan.for_data(DataShape.of(lines), self.memory_gb, self.ease_max_items)


@dataclass
class Evaluation:
    split: str
    validation_split: str
    end: str
    table: dict[str, dict[str, dict[str, float]]]
    tuned: Tuned
    case_study: dict[str, Any] | None
    coverage: dict[str, dict[str, float]] = field(default_factory=dict)
    plan: dict[str, Any] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {"split": self.split, "validation_split": self.validation_split, "end": self.end,
                "table": self.table, "coverage": self.coverage, "memory_plan": self.plan,
                "tuned": self.tuned.to_dict(), "case_study": self.case_study}


def split_dates(lines: pd.DataFrame, options: EvaluationOptions) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Test = [split, end]; validation = [validation, split) and ends before the test period starts."""
    end = lines["event_time"].max().normalize()
    split = options.split_date or end - pd.Timedelta(days=options.test_days)
    validation = options.validation_date or split - pd.Timedelta(days=options.test_days)
    if not validation < split:
        raise DataError(f"validation split {validation.date()} must be before the test split {split.date()}")
    return split, validation


def evaluate_history(lines: pd.DataFrame, options: EvaluationOptions, out: Path, stages: Stages,
                     progress: Progress, plan: MemoryPlan | None = None) -> Evaluation:
    split, validation = split_dates(lines, options)
    plan = plan or options.plan(lines)
    progress(plan.describe())
    tuned = Tuned.from_file(options.params_file) if options.params_file else Tuned()
    with stages.stage("validation split"):
        validation_split = TemporalSplit.at(lines, validation, end=split, max_customers=options.eval_max_customers)
    if options.tune:
        with stages.stage("tune model settings"):
            tune_models(validation_split, tuned, progress, plan)
    with stages.stage("tune hybrid weights"):
        tune_weights(validation_split, tuned, progress, plan)
    del validation_split
    with stages.stage("test split"):
        test_split = TemporalSplit.at(lines, split, max_customers=options.eval_max_customers)
    models = fit_models(test_split.train, tuned, stages.stage, plan)
    with stages.stage("evaluate"):
        table = evaluation_table(test_split, models)
        coverage = coverage_table(test_split.train, models)
    exported = export_recommendations(models["hybrid"], test_split, options.export_recs) if options.export_recs \
        else None
    del models  # the evaluated models are not needed past here; the refit on all data needs the memory
    case_study = None
    if options.case_study and plan.case_study_customers > 0:
        with stages.stage("case-study protocol"):
            case_study = in_sample_precision(lines, max_customers=plan.case_study_customers)
    result = Evaluation(split=str(split.date()), validation_split=str(validation.date()),
                        end=str(test_split.end), table=table, tuned=tuned, case_study=case_study,
                        coverage=coverage, plan=plan.summary())
    result.files = write_evaluation(result, out)
    if exported is not None:
        result.files.append(exported)
    return result


@dataclass
class RunResult:
    version: str
    folder: Path
    evaluation: Evaluation
    published: PublishResult | None


def run(data: LoadedData, options: EvaluationOptions, artifacts: Path, client: redis.Redis | None,
        keys: KeyLayout, stages: Stages, progress: Progress, keep_versions: int = 3) -> RunResult:
    """The whole nightly job. With `client=None` nothing is published (artifacts only)."""
    lines = data.lines
    plan = options.plan(lines)  # before anything big: a budget too small for this data stops the run here
    version = new_version()
    folder = artifacts / "models" / version
    with stages.stage("eda"):
        summary = eda.explore(lines)
        eda.plot(lines, summary, folder)
        (folder / "eda.json").write_text(json.dumps(summary, indent=2))
        data.report.write_json(folder / "cleaning_report.json")
    evaluation = evaluate_history(lines, options, folder, stages, progress, plan)
    with stages.stage("fit on all data"):
        full = Interactions.from_lines(lines)
        fitted = {name: build(name, evaluation.tuned.params[name], plan).fit(full) for name in HYBRID_COMPONENTS}
        hybrid = HybridRecommender.of(fitted, evaluation.tuned.weights)
        hybrid.save(folder / "hybrid")
        coverage = coverage_table(full, fitted)
    with stages.stage("segments"):
        segments = rfm_table(lines)
        seg_summary = segment_summary(segments)
        segments.to_csv(folder / "segments.csv", index=False)
        eda.plot_segments(seg_summary, folder)
    with stages.stage("category rules"):
        top_category_rules = category_rules(lines)
    card = model_card(version, data, summary, evaluation, seg_summary, full, coverage)
    (folder / "model_card.json").write_text(json.dumps(card, indent=2, default=str))
    published = None
    if client is not None:
        with stages.stage("publish"):
            bundle = build_bundle(version, card, hybrid, lines, top_category_rules, segments, seg_summary)
            published = publish(client, keys, bundle, keep=keep_versions)
    return RunResult(version=version, folder=folder, evaluation=evaluation, published=published)

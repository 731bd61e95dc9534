"""The nightly job: explore, evaluate (temporal split, weights chosen on validation), refit on everything,
segment, and publish a versioned model into Redis."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from batch import eda
from batch.bundle import build_bundle, category_rules
from batch.cohorts import cohort_lists, evaluate_cold_start
from batch.engine import Engine, SingleMachine
from batch.evaluation.case_study import in_sample_precision
from batch.evaluation.reports import export_recommendations, model_card, write_evaluation
from batch.evaluation.result import Evaluation, EvaluationOptions
from batch.evaluation.split import TemporalSplit
from batch.evaluation.tuning import (
    coverage_table,
    evaluation_table,
)
from batch.interactions import Interactions
from batch.memory import MemoryPlan
from batch.models import Recommender
from batch.offers import offer_export, segment_offers
from batch.publish import Publishing, PublishResult, new_version, publish, publish_progress
from batch.ranker.history import History
from batch.ranker.model import RankerRecommender
from batch.ranker.stage import (
    StaleSettings,
    labelled,
    latest_window,
    sampled,
    test_report,
    test_rows,
    train_ranker,
)
from batch.ranker.train import Untrainable, refit
from batch.segments import cut_points, rfm_table, segment_summary, snapshot_of
from batch.stages import Stages
from common.data.catalogue import product_catalogue
from common.data.errors import DataError
from common.data.load import LoadedData
from common.keys import KeyLayout
from common.redis_clients import SyncRedis

Progress = Callable[[str], None]


def split_dates(lines: pd.DataFrame, options: EvaluationOptions) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Test = [split, end]; validation = [validation, split) and ends before the test period starts."""
    end = lines["event_time"].max().normalize()
    split = options.split_date or end - pd.Timedelta(days=options.test_days)
    validation = options.validation_date or split - pd.Timedelta(days=options.test_days)
    if not validation < split:
        raise DataError(f"validation split {validation.date()} must be before the test split {split.date()}")
    return split, validation


def evaluate_history(lines: pd.DataFrame, options: EvaluationOptions, out: Path, stages: Stages,
                     progress: Progress, plan: MemoryPlan | None = None,
                     customers: pd.DataFrame | None = None, engine: Engine | None = None) -> Evaluation:
    """Every model on the test period; with a customers table, also the demographic cold start."""
    engine = engine or SingleMachine()
    split, validation = split_dates(lines, options)
    plan = plan or options.plan(lines)
    progress(plan.describe())
    tuned = engine.initial(options.params_file)
    with stages.stage("validation split"):
        validation_split = TemporalSplit.at(lines, validation, end=split, max_customers=options.eval_max_customers)
    if options.tune:
        with stages.stage("tune model settings"):
            engine.tune_models(validation_split, tuned, progress, plan)
    with stages.stage("tune hybrid weights"):
        validation_generators = engine.tune_weights(validation_split, tuned, progress, plan)
    with stages.stage("ranker: train"):
        ranker = train_ranker(lines, validation_split, split - validation, validation_generators,
                              lambda data: engine.fit_generators(data, tuned, plan), options.ranker_windows,
                              options.ranker_max_customers, progress, options.ablations,
                              options.ranker_fit_max_customers)
        if ranker.trained is None:
            progress(f"ranker not trained ({ranker.reason}): the blend is served")
        tuned.ranker = ranker.settings()
    del validation_split, validation_generators
    with stages.stage("test split"):
        test_split = TemporalSplit.at(lines, split, max_customers=options.eval_max_customers)
    models = engine.fit_models(test_split.train, tuned, stages.stage, plan)
    generators = engine.generators(models)
    with stages.stage("ranker: test features"):
        ranker_rows = test_rows(ranker, generators, test_split)
        models |= ranker_rows
    with stages.stage("evaluate"):
        table, lists = evaluation_table(test_split, models)
        coverage = coverage_table(test_split.train, models)
    if ranker_rows:
        with stages.stage("ranker: report and the latest window"):
            ranker.report = test_report(ranker_rows["ranker"], generators, lists, ("tifu", "repeat", "hybrid"),
                                        test_split.holdouts)
            ranker.latest = labelled(generators, test_split.train,
                                     sampled(test_split.holdouts["all_items"], options.ranker_max_customers))
    served = models["ranker" if ranker.trained is not None else "hybrid"]
    exported = export_recommendations(served, test_split, options.export_recs) if options.export_recs else None
    # The evaluated models (the ranker's rows hold the test split's generators too) are not needed past here; the
    # case study, the cold start and the refit need the memory.
    del models, generators, served, lists, ranker_rows
    case_study = None
    if options.case_study and plan.case_study_customers > 0:
        with stages.stage("case-study protocol"):
            case_study = in_sample_precision(lines, max_customers=plan.case_study_customers)
    cold_start = None
    if customers is not None and {"region", "age"} <= set(customers.columns):
        with stages.stage("cold start"):
            cold_start = evaluate_cold_start(lines, customers, split, tuned.params["trend"]["window_days"],
                                             options.eval_max_customers)
    result = Evaluation(split=str(split.date()), validation_split=str(validation.date()),
                        end=str(test_split.end), table=table, tuned=tuned, case_study=case_study,
                        coverage=coverage, plan=plan.summary(), cold_start=cold_start, ranker=ranker)
    result.files = write_evaluation(result, out)
    if exported is not None:
        result.files.append(exported)
    return result


def carried_evaluation(lines: pd.DataFrame, options: EvaluationOptions, out: Path, stages: Stages,
                       progress: Progress, plan: MemoryPlan, engine: Engine) -> Evaluation:
    """A night that does not evaluate: `options.reuse`'s report and settings, and the ranker's latest window (the
    test period's labels, as an evaluating night's refit has). Raises StaleSettings when its ranker settings do not
    fit this run's generators (the run evaluates instead)."""
    last = options.reuse
    assert last is not None
    progress(plan.describe())
    progress(f"not evaluating: the settings and report of the evaluation in {last.version} "
             f"({last.evaluated_at:%Y-%m-%d}) are reused")
    evaluation = Evaluation.read_back(last)
    if last.tuned.ranker and evaluation.ranker.usable:
        split, _ = split_dates(lines, options)
        with stages.stage("ranker: the latest window"):
            evaluation.ranker.latest = latest_window(
                lines, split, lambda data: engine.fit_generators(data, last.tuned, plan), last.tuned.ranker,
                options.ranker_max_customers, options.ranker_fit_max_customers, progress)
    evaluation.files = last.carry_to(out)
    return evaluation


def serve(evaluation: Evaluation, generators: dict[str, Recommender], full: Interactions,
          progress: Progress) -> RankerRecommender | None:
    """The ranker trained again on the latest window with what validation chose (`Tuned.ranker`), over
    generators fitted on everything; None (the blend is served, and the card says why) when it cannot be."""
    outcome, settings = evaluation.ranker, evaluation.tuned.ranker
    if not outcome.usable or outcome.latest is None or not settings:
        return None
    try:
        booster = refit(outcome.latest, settings)
    except Untrainable as exc:
        outcome.give_up(f"the latest window: {exc}")
        progress(f"ranker not refitted ({exc}): the blend is served")
        return None
    outcome.latest = None  # its features are not needed past here
    return RankerRecommender.of(generators, History.of(full), booster, settings["columns"])


def explore_customers_and_offers(data: LoadedData, segments: pd.DataFrame, summary: dict[str, Any],
                                 folder: Path) -> dict[str, dict[str, Any]]:
    """Customer exploration into the EDA (JSON + plots), the segment offers (offers.json) and the campaign export
    (offers.csv: customer id, segment, offered products)."""
    summary["customers"] = eda.explore_customers(data.lines, data.customers, segments)
    eda.plot_customers(summary["customers"], folder)
    (folder / "eda_customers.json").write_text(json.dumps(summary["customers"], indent=2))
    catalogue = data.products if data.products is not None else product_catalogue(data.lines)
    names = {str(p): {"name": str(n), "category": str(c)}
             for p, n, c in zip(catalogue["product_id"], catalogue["name"], catalogue["category"], strict=True)}
    offers = segment_offers(data.lines, segments, names)
    (folder / "offers.json").write_text(json.dumps(offers, indent=2))
    offer_export(data.lines, segments, offers).to_csv(folder / "offers.csv", index=False)
    return offers


@dataclass
class RunResult:
    version: str
    folder: Path
    evaluation: Evaluation
    published: PublishResult | None


def run(data: LoadedData, options: EvaluationOptions, artifacts: Path, client: SyncRedis | None,
        keys: KeyLayout, stages: Stages, progress: Progress, publishing: Publishing | None = None,
        engine: Engine | None = None) -> RunResult:
    """The whole nightly job. With `client=None` nothing is published (artifacts only)."""
    engine = engine or SingleMachine()
    lines = data.lines
    plan = options.plan(lines)  # before anything big: a budget too small for this data stops the run here
    version = new_version()
    folder = artifacts / "models" / version
    with stages.stage("eda"):
        summary = eda.explore(lines)
        eda.plot(lines, summary, folder)
        (folder / "eda.json").write_text(json.dumps(summary, indent=2))
        data.report.write_json(folder / "cleaning_report.json")
    evaluation = None
    if options.reuse is not None:
        try:
            evaluation = carried_evaluation(lines, options, folder, stages, progress, plan, engine)
        except StaleSettings as exc:
            progress(f"evaluating: {exc}")
    if evaluation is None:
        evaluation = evaluate_history(lines, options, folder, stages, progress, plan, customers=data.customers,
                                      engine=engine)
    with stages.stage("fit on all data"):
        full = Interactions.from_lines(lines)
        generators = engine.fit_generators(full, evaluation.tuned, plan)
        hybrid = engine.served_blend(generators, evaluation.tuned)
        coverage = coverage_table(full, generators)
    with stages.stage("ranker: refit on the latest window"):
        served = serve(evaluation, generators, full, progress) or hybrid
        served.save(folder / evaluation.served)
    with stages.stage("segments"):
        segments = rfm_table(lines)
        seg_summary = segment_summary(segments)
        cuts = cut_points(segments, snapshot_of(lines)).to_dict()
        segments.to_csv(folder / "segments.csv", index=False)
        eda.plot_segments(seg_summary, folder)
    with stages.stage("customers and offers"):
        offers = explore_customers_and_offers(data, segments, summary, folder)
    cohorts = {}
    if evaluation.serve_cohorts:
        with stages.stage("cohort best-sellers"):
            cohorts = cohort_lists(lines, data.customers, evaluation.tuned.params["trend"]["window_days"])
    with stages.stage("category rules"):
        top_category_rules = category_rules(lines)
    card = model_card(version, data, summary, evaluation, seg_summary, full, coverage, engine.name,
                      engine.details())
    (folder / "model_card.json").write_text(json.dumps(card, indent=2, default=str))
    published = None
    if client is not None:
        with stages.stage("top lists and buy cycles"):
            bundle = build_bundle(version, card, served, lines, top_category_rules, segments, seg_summary,
                                  offers=offers, cut_points=cuts, cohorts=cohorts, progress=progress)
        with stages.stage("publish"):
            published = publish(client, keys, bundle, publishing, on_progress=publish_progress(progress))
    return RunResult(version=version, folder=folder, evaluation=evaluation, published=published)

"""`recsys batch run | evaluate | schedule`."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import typer

from batch.evaluation.last import LastEvaluation, last_evaluation, why_evaluate
from batch.evaluation.reports import cold_start_markdown
from batch.evaluation.result import Evaluation, EvaluationOptions
from batch.pipeline import RunResult, evaluate_history, run
from batch.publish import Publishing, current_version
from batch.schedule import next_run_after
from batch.source import from_archive, from_file, from_history, from_topic
from batch.stages import Stages
from cli.errors import friendly_errors
from cli.guard import run_in_child
from common.data.load import LoadedData
from common.health import Heartbeat
from common.keys import KeyLayout
from common.redis_clients import sync_client
from common.settings import Settings, get_settings

if TYPE_CHECKING:
    # Imported where used: the Spark engine is an optional extra.
    from batch.spark.session import SparkOptions

REFIT_POLL_S = 10.0
app = typer.Typer(help="The nightly job: EDA, models, segments, evaluation, publish.", no_args_is_help=True)



class Source(StrEnum):
    auto = "auto"
    topic = "topic"
    archive = "archive"
    file = "file"


DataOption = typer.Option(None, "--data", help="Read this file/folder instead of the purchases topic.")
SourceOption = typer.Option(
    Source.auto, "--source",
    help="auto: the topic, plus the archive once it holds purchases the topic no longer does; topic; archive "
         "(RECSYS_ARCHIVE_URL); file (needs --data, which implies it).")
PresetOption = typer.Option("case_study", "--preset", help="Column mapping preset for --data: case_study or uci.")
MappingOption = typer.Option(None, "--mapping", help="A TOML column-mapping file for --data.")
SplitOption = typer.Option(None, "--split-date", help="Test period starts here (default: last N days).")
ValidationOption = typer.Option(None, "--validation-date", help="Validation starts here (default: N days earlier).")
ParamsOption = typer.Option(None, "--params", help="Model settings chosen by `batch evaluate --tune`.")


class EngineName(StrEnum):
    single_machine = "single-machine"
    spark = "spark"


EngineOption = typer.Option(EngineName.single_machine, "--engine",
                            help="Where the models are fitted: in this process, or by Spark (ALS and the rules; "
                                 "needs the spark extra and Java 17).")
SparkMasterOption = typer.Option(None, "--spark-master", help="With --engine spark: local[*], local[N] or "
                                                              "spark://HOST:7077 (default RECSYS_SPARK_MASTER).")
SparkConfOption = typer.Option(None, "--spark-conf", help="With --engine spark: a Spark setting KEY=VALUE, "
                                                          "repeatable (e.g. spark.executor.memory=8g).")


@dataclass(frozen=True)
class EngineChoice:
    name: EngineName = EngineName.single_machine
    spark_master: str | None = None
    spark_conf: tuple[str, ...] = ()

    @classmethod
    def of(cls, name: EngineName, spark_master: str | None, spark_conf: list[str] | None) -> EngineChoice:
        if name is not EngineName.spark and (spark_master or spark_conf):
            raise typer.BadParameter("--spark-master and --spark-conf go with --engine spark", param_hint="--engine")
        for item in spark_conf or ():
            key, sep, _ = item.partition("=")
            if not sep or not key.strip():
                raise typer.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--spark-conf")
        return cls(name, spark_master, tuple(spark_conf or ()))

    def spark_options(self, settings: Settings) -> SparkOptions | None:
        """The Spark engine's options, None for the single-machine engine. Imports the engine, so a missing
        pyspark is a one-line error here, before any data is read."""
        if self.name is not EngineName.spark:
            return None
        from batch.spark.session import SparkOptions

        conf = {key.strip(): value.strip() for key, _, value in (item.partition("=") for item in self.spark_conf)}
        return SparkOptions.from_settings(settings, self.spark_master, conf)


def _load(settings: Settings, data: Path | None, preset: str, mapping: Path | None,
          source: Source = Source.auto) -> LoadedData:
    if data is not None and source not in (Source.auto, Source.file):
        raise typer.BadParameter(f"--data reads a file; it cannot be combined with --source {source.value}")
    if data is not None:
        typer.echo(f"loading {data} (preset {preset if mapping is None else mapping})")
        return from_file(data, preset if mapping is None else None, mapping, None, settings.event_bounds)
    if source is Source.file:
        raise typer.BadParameter("--source file needs --data PATH")
    if source is Source.archive:
        typer.echo(f"reading the archive at {settings.archive_location}")
        loaded = from_archive(settings)
    else:
        typer.echo(f"reading topic {settings.topic_purchases} from {settings.bootstrap_servers} until it is exhausted")
        started = time.monotonic()
        last = [0.0]

        def progress(records: int) -> None:
            if time.monotonic() - last[0] >= 1.0:
                last[0] = time.monotonic()
                typer.echo(f"  {records:,} records ({records / (last[0] - started):,.0f}/s)")

        loaded = (from_topic if source is Source.topic else from_history)(settings, progress)
    origin = loaded.origin
    where = f" from {origin.kind} ({', '.join(f'{k} {v:,}' for k, v in origin.counts.items())})" if origin else ""
    typer.echo(f"  {loaded.report.raw_rows:,} records, {len(loaded.lines):,} distinct valid purchase lines{where}")
    return loaded


def _options(settings: Settings, split_date: str | None, validation_date: str | None, test_days: int,
             **extra: Any) -> EvaluationOptions:
    return EvaluationOptions(
        split_date=pd.Timestamp(split_date) if split_date else None,
        validation_date=pd.Timestamp(validation_date) if validation_date else None,
        test_days=test_days, memory_gb=settings.batch_memory_gb, ease_max_items=settings.batch_ease_max_items,
        eval_max_customers=settings.batch_eval_max_customers, ranker_windows=settings.batch_ranker_windows,
        ranker_fit_max_customers=settings.batch_ranker_fit_max_customers,
        ranker_max_customers=settings.batch_ranker_max_customers,
        **extra,
    )


def _echo_table(evaluation: Evaluation) -> None:
    typer.echo(f"\ntest from {evaluation.split} (validation from {evaluation.validation_split})")
    for name, c in evaluation.coverage.items():
        if c["products"] < c["of_products"]:
            typer.echo(f"{name} covers {int(c['products']):,} of {int(c['of_products']):,} products: "
                       f"{c['lines_share']:.1%} of lines, {c['customers_share']:.1%} of customers")
    for variant, rows in evaluation.table.items():
        typer.echo(f"{variant:>10}  {'model':<18} {'P@5':>7} {'R@10':>7} {'NDCG@10':>8} {'MAP@10':>7} {'HR@10':>7}"
                   f" {'cov@10':>7}")
        for name, m in rows.items():
            typer.echo(f"{'':>10}  {name:<18} {m['precision@5']:7.4f} {m['recall@10']:7.4f} {m['ndcg@10']:8.4f}"
                       f" {m['map@10']:7.4f} {m['hit_rate@10']:7.4f} {m['coverage@10']:7.4f}")
    if evaluation.case_study:
        cs = evaluation.case_study
        typer.echo(f"case-study in-sample protocol (not a holdout): NMF P@5 {cs['nmf']['precision@5']:.4f}, "
                   f"popularity P@5 {cs['popularity']['precision@5']:.4f}, "
                   f"published P@5 {cs['published']['precision@5']:.4f}")
    if evaluation.cold_start:
        typer.echo(cold_start_markdown(evaluation.cold_start))


@app.command("evaluate")
def evaluate_command(
    data: Path = typer.Option(..., "--data", help="Transactions file or folder."),
    preset: str = PresetOption,
    mapping: Path | None = MappingOption,
    split_date: str | None = SplitOption,
    validation_date: str | None = ValidationOption,
    test_days: int = typer.Option(30, min=1, help="Length of the test and validation periods when not given."),
    tune: bool = typer.Option(False, "--tune", help="Grid-search every model's settings on validation."),
    params: Path | None = ParamsOption,
    export_recs: Path | None = typer.Option(None, "--export-recs", help="CSV of each customer's top 20."),
    out: Path | None = typer.Option(None, "--out", help="Output folder (default <artifacts>/evaluation)."),
    engine: EngineName = EngineOption,
    spark_master: str | None = SparkMasterOption,
    spark_conf: list[str] | None = SparkConfOption,
) -> None:
    """Temporal-split evaluation of every model and the hybrid; writes markdown, JSON and a plot. With --engine
    spark the table holds the Spark models beside the single-machine ones, on the same split."""
    settings = get_settings()
    choice = EngineChoice.of(engine, spark_master, spark_conf)
    run_in_child(lambda: _evaluate(settings, choice, data, preset, mapping, split_date, validation_date, test_days,
                                   tune, params, export_recs, out), _crash_log(settings))


def _crash_log(settings: Settings) -> Path:
    return settings.run_dir / "batch-crash.txt"


def _evaluate(settings: Settings, choice: EngineChoice, data: Path, preset: str, mapping: Path | None,
              split_date: str | None, validation_date: str | None, test_days: int, tune: bool, params: Path | None,
              export_recs: Path | None, out: Path | None) -> None:
    stages = Stages(report=typer.echo)
    with friendly_errors():
        spark = choice.spark_options(settings)
        with stages.stage("load/clean"):
            loaded = _load(settings, data, preset, mapping)
        options = _options(settings, split_date, validation_date, test_days, tune=tune, params_file=params,
                           export_recs=export_recs)
        folder = out or settings.artifacts_dir / "evaluation"
        if spark is not None:
            from batch.spark.engine import evaluate_spark

            result = evaluate_spark(loaded.lines, options, spark, folder, stages, typer.echo,
                                    customers=loaded.customers)
        else:
            result = evaluate_history(loaded.lines, options, folder, stages, typer.echo, customers=loaded.customers)
    _echo_table(result)
    for path in result.files:
        typer.echo(f"wrote {path}")


@app.command("run")
def run_command(
    data: Path | None = DataOption,
    source: Source = SourceOption,
    preset: str = PresetOption,
    mapping: Path | None = MappingOption,
    split_date: str | None = SplitOption,
    validation_date: str | None = ValidationOption,
    params: Path | None = ParamsOption,
    until: str | None = typer.Option(None, "--until", help="Train only on purchases before this date."),
    no_publish: bool = typer.Option(False, "--no-publish", help="Write artifacts only; leave Redis alone."),
    evaluate: bool = typer.Option(False, "--evaluate", help="Evaluate even when the last evaluation is recent "
                                                            "(RECSYS_BATCH_EVALUATE_EVERY_DAYS)."),
    engine: EngineName = EngineOption,
    spark_master: str | None = SparkMasterOption,
    spark_conf: list[str] | None = SparkConfOption,
) -> None:
    """The nightly job: load, EDA, evaluate (every RECSYS_BATCH_EVALUATE_EVERY_DAYS; the runs between reuse the
    last evaluation's settings), refit on everything, segment, publish a new model version."""
    settings = get_settings()
    choice = EngineChoice.of(engine, spark_master, spark_conf)

    def job() -> None:
        with friendly_errors():
            _run_once(settings, data, preset, mapping, split_date, validation_date, params, not no_publish,
                      pd.Timestamp(until) if until else None, source, choice, evaluate)

    run_in_child(job, _crash_log(settings))


def _run_once(settings: Settings, data: Path | None, preset: str, mapping: Path | None, split_date: str | None,
              validation_date: str | None, params: Path | None, publish: bool,
              until: pd.Timestamp | None = None, source: Source = Source.auto,
              choice: EngineChoice = EngineChoice(), evaluate: bool = False) -> None:
    stages = Stages(report=typer.echo)
    started = time.perf_counter()
    spark = choice.spark_options(settings)
    with stages.stage("load/clean"):
        loaded = _load(settings, data, preset, mapping, source)
        if until is not None:
            loaded.lines = loaded.lines[loaded.lines["event_time"] < until].reset_index(drop=True)
            typer.echo(f"  training on {len(loaded.lines):,} lines before {until.date()}")
    if loaded.lines.empty:
        raise typer.BadParameter("no purchase lines to train on")
    client = sync_client(settings) if publish else None
    asked = evaluate or params is not None or bool(split_date or validation_date)
    options = _options(settings, split_date, validation_date, settings.batch_test_days, params_file=params,
                       ablations=False, reuse=_reusable(settings, choice, asked))
    keys = KeyLayout(settings.key_prefix)
    jvm_peak: float | None = None
    if spark is not None:
        from batch.spark.engine import run_spark

        spark_run = run_spark(loaded, options, spark, settings.artifacts_dir, client, keys, stages, typer.echo,
                              publishing=Publishing.from_settings(settings))
        result: RunResult = spark_run.result
        jvm_peak = spark_run.jvm_peak_rss_mib
    else:
        result = run(loaded, options, settings.artifacts_dir, client, keys, stages, typer.echo,
                     publishing=Publishing.from_settings(settings))
    _echo_table(result.evaluation)
    typer.echo(f"\nmodel {result.version}: artifacts in {result.folder} (segment offers for a campaign tool: "
               f"{result.folder / 'offers.csv'})")
    if result.published:
        p = result.published
        typer.echo(f"published {p.bytes / 1e6:,.1f} MB to Redis in {p.seconds:.2f} s ({p.round_trips} round trips); "
                   f"current -> {p.version}"
                   + (f"; pruned {', '.join(p.pruned)}" if p.pruned else ""))
    typer.echo(f"total {time.perf_counter() - started:.1f} s, peak RSS {stages.peak_rss_mib():.0f} MiB"
               + (f" (driver JVM peak RSS {jvm_peak:.0f} MiB)" if jvm_peak is not None else ""))


def _reusable(settings: Settings, choice: EngineChoice, evaluate: bool) -> LastEvaluation | None:
    """The last evaluation, when this run reuses it instead of evaluating (and says which it does)."""
    if evaluate:
        typer.echo("evaluating: asked for (--evaluate, --params or split dates)")
        return None
    last = last_evaluation(settings.artifacts_dir)
    reason = why_evaluate(last, choice.name.value, datetime.now(UTC), settings.batch_evaluate_every_days)
    if reason is not None:
        typer.echo(f"evaluating: {reason}")
        return None
    return last


@app.command("schedule")
def schedule_command(
    data: Path | None = DataOption,
    source: Source = SourceOption,
    preset: str = PresetOption,
    mapping: Path | None = MappingOption,
    at: str | None = typer.Option(None, "--at", help="UTC time of day HH:MM (default: settings)."),
    engine: EngineName = EngineOption,
    spark_master: str | None = SparkMasterOption,
    spark_conf: list[str] | None = SparkConfOption,
) -> None:
    """Run nightly at a fixed UTC time, and when an admin asks (POST /admin/refit); runs once at start when no
    model is published yet."""
    settings = get_settings() if at is None else get_settings().model_copy(update={"batch_schedule_at": at})
    choice = EngineChoice.of(engine, spark_master, spark_conf)
    keys = KeyLayout(settings.key_prefix)
    client = sync_client(settings)
    heartbeat = Heartbeat(settings.run_dir, "batch").start()  # `recsys health batch` reads it

    def run_now() -> None:
        heartbeat.update(state="running", running_since=round(time.time()))

        def job() -> None:
            with friendly_errors():
                _run_once(settings, data, preset, mapping, None, None, None, True, source=source, choice=choice)

        run_in_child(job, _crash_log(settings))

    with friendly_errors():
        if current_version(client, keys) is None:
            typer.echo("no published model: running now")
            run_now()
        while True:
            due = next_run_after(datetime.now(UTC), settings.batch_schedule_at)
            typer.echo(f"next run at {due:%Y-%m-%d %H:%M} UTC")
            heartbeat.update(state="waiting", next_run=f"{due:%Y-%m-%d %H:%M} UTC")
            while datetime.now(UTC) < due:
                if client.getdel(keys.batch_refit_requested()) is not None:
                    typer.echo("refit requested through the API: running now")
                    break
                time.sleep(min(REFIT_POLL_S, max(0.0, (due - datetime.now(UTC)).total_seconds())))
            run_now()

"""The nightly job: explore, evaluate (temporal split, weights chosen on validation), refit on everything,
segment, and publish a versioned model into Redis."""

from __future__ import annotations

import json
import platform
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import redis

from batch import eda
from batch.case_study import in_sample_precision
from batch.evaluate import KS, VARIANTS, TemporalSplit
from batch.experiment import HYBRID_COMPONENTS, Tuned, build, evaluation_table, fit_models, tune_models, tune_weights
from batch.interactions import Interactions
from batch.models import HybridRecommender, Recommender, RulesRecommender
from batch.models.base import top_k
from batch.publish import ModelBundle, PublishResult, new_version, publish
from batch.rules import basket_matrix, mine_rules
from batch.segments import rfm_table, segment_summary
from batch.stages import Stages
from common import toplist
from common.data.errors import DataError
from common.data.load import LoadedData
from common.keys import KeyLayout

Progress = Callable[[str], None]
TOP_N = 50
POPULAR_N = 100
RULES_PER_PRODUCT = 20
CATEGORY_RULES = 200
CATEGORY_MIN_SUPPORT = 0.005  # the case study's setting
CATEGORY_MIN_LIFT = 0.5


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


def split_dates(lines: pd.DataFrame, options: EvaluationOptions) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Test = [split, end]; validation = [validation, split) and ends before the test period starts."""
    end = lines["event_time"].max().normalize()
    split = options.split_date or end - pd.Timedelta(days=options.test_days)
    validation = options.validation_date or split - pd.Timedelta(days=options.test_days)
    if not validation < split:
        raise DataError(f"validation split {validation.date()} must be before the test split {split.date()}")
    return split, validation


def evaluate_history(lines: pd.DataFrame, options: EvaluationOptions, out: Path, stages: Stages,
                     progress: Progress) -> Evaluation:
    split, validation = split_dates(lines, options)
    tuned = Tuned.from_file(options.params_file) if options.params_file else Tuned()
    with stages.stage("validation split"):
        validation_split = TemporalSplit.at(lines, validation, end=split)
    if options.tune:
        with stages.stage("tune model settings"):
            tune_models(validation_split, tuned, progress)
    with stages.stage("tune hybrid weights"):
        tune_weights(validation_split, tuned, progress)
    with stages.stage("test split"):
        test_split = TemporalSplit.at(lines, split)
    models = fit_models(test_split.train, tuned, stages.stage)
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


def write_evaluation(result: Evaluation, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    files = [out / "evaluation.json", out / "evaluation.md", out / "params.json"]
    files[0].write_text(json.dumps(result.summary(), indent=2, default=str))
    files[1].write_text(evaluation_markdown(result))
    files[2].write_text(json.dumps(result.tuned.to_dict(), indent=2, default=str))
    files.append(eda.plot_evaluation(result.table, out))
    return files


def evaluation_markdown(result: Evaluation) -> str:
    lines = [f"# Offline evaluation\n\nTemporal split: train before {result.split}, test {result.split} .. "
             f"{result.end}; settings and hybrid weights chosen on validation (train before "
             f"{result.validation_split}, validate up to {result.split}).\n"]
    columns = [f"{m}@{k}" for k in KS for m in ("precision", "recall", "ndcg", "map", "hit_rate", "coverage")]
    for variant, rows in result.table.items():
        customers = int(next(iter(rows.values()))["customers"])
        lines.append(f"\n## {variant.replace('_', ' ')} ({customers} customers)\n")
        lines.append("| model | " + " | ".join(columns) + " |")
        lines.append("|---|" + "---:|" * len(columns))
        for name, metrics in rows.items():
            lines.append(f"| {name} | " + " | ".join(f"{metrics[c]:.4f}" for c in columns) + " |")
    if result.case_study:
        cs = result.case_study
        lines.append(f"\n## The case study's in-sample protocol (NOT a holdout: fitted and scored on the same "
                     f"purchases; {cs['customers']} customers x {cs['products']} products)\n")
        lines.append("| model | precision@5 | precision@10 | precision@20 |\n|---|---:|---:|---:|")
        for name in ("nmf", "popularity", "published"):
            lines.append(f"| {name} | " + " | ".join(f"{cs[name][f'precision@{k}']:.4f}" for k in KS) + " |")
    return "\n".join(lines) + "\n"


def export_recommendations(model: Recommender, split: TemporalSplit, path: Path) -> Path:
    """customer_id, rank, product_id: each evaluated customer's top 20 as served (all-items variant)."""
    holdout = split.holdouts["all_items"]
    top, _ = model.recommend(holdout.rows, max(KS))
    customers = model.customer_ids[holdout.rows]
    frame = pd.DataFrame({
        "customer_id": np.repeat(customers, top.shape[1]),
        "rank": np.tile(np.arange(1, top.shape[1] + 1), len(customers)),
        "product_id": model.product_ids[top].ravel(),
    })
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


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
    version = new_version()
    folder = artifacts / "models" / version
    with stages.stage("eda"):
        summary = eda.explore(lines)
        eda.plot(lines, summary, folder)
        (folder / "eda.json").write_text(json.dumps(summary, indent=2))
        data.report.write_json(folder / "cleaning_report.json")
    evaluation = evaluate_history(lines, options, folder, stages, progress)
    with stages.stage("fit on all data"):
        full = Interactions.from_lines(lines)
        fitted = {name: build(name, evaluation.tuned.params[name]).fit(full) for name in HYBRID_COMPONENTS}
        hybrid = HybridRecommender.of(fitted, evaluation.tuned.weights)
        hybrid.save(folder / "hybrid")
    with stages.stage("segments"):
        segments = rfm_table(lines)
        seg_summary = segment_summary(segments)
        segments.to_csv(folder / "segments.csv", index=False)
        eda.plot_segments(seg_summary, folder)
    with stages.stage("category rules"):
        category_rules = _category_rules(lines)
    card = model_card(version, data, summary, evaluation, seg_summary, full)
    (folder / "model_card.json").write_text(json.dumps(card, indent=2, default=str))
    published = None
    if client is not None:
        with stages.stage("publish"):
            bundle = ModelBundle(
                version=version, card=card, topn=top_lists(hybrid, TOP_N), popular=popular_list(fitted["trend"]),
                rules=product_rules(fitted["rules"]), category_rules=category_rules,
                segments=_segment_rows(segments), segment_summary=_records(seg_summary),
                products=_products(lines),
            )
            published = publish(client, keys, bundle, keep=keep_versions)
    return RunResult(version=version, folder=folder, evaluation=evaluation, published=published)


def model_card(version: str, data: LoadedData, summary: dict[str, Any], evaluation: Evaluation,
               segments: pd.DataFrame, full: Interactions) -> dict[str, Any]:
    headline = {v: {m: round(evaluation.table[v]["hybrid"][m], 4) for m in ("precision@5", "ndcg@10",
                                                                                  "recall@10")} for v in VARIANTS}
    return {
        "version": version,
        "model": "hybrid",
        "data_window": summary["window"],
        "data": summary["totals"],
        "matrix": {"customers": full.shape[0], "products": full.shape[1], "nonzero": int(full.orders.nnz)},
        "params": evaluation.tuned.params,
        "weights": evaluation.tuned.weights,
        "headline": headline,
        "evaluation": evaluation.summary(),
        "cleaning": data.report.to_dict(),
        "eda": summary,
        "segments": segments.to_dict(orient="records"),
        "built_with": {"python": platform.python_version()},
    }


def top_lists(hybrid: HybridRecommender, n: int) -> dict[str, str]:
    """Each customer's top n with the component that contributed most (the API turns it into a reason), in the
    compact stored form of `common.toplist`."""
    lists: dict[str, str] = {}
    names = list(hybrid.models)
    weights = np.array([hybrid.weights.get(name, 0.0) for name in names])
    rows_all = np.arange(len(hybrid.customer_ids))
    for start in range(0, len(rows_all), 1024):
        rows = rows_all[start:start + 1024]
        scaled = hybrid.component_scores(rows)
        parts = np.stack([scaled[name] for name in names]) * weights[:, None, None]
        total = parts.sum(axis=0)
        top = top_k(total, n, hybrid.tie_break())
        source = np.take_along_axis(parts.argmax(axis=0), top, axis=1)
        scores = np.take_along_axis(total, top, axis=1)
        for i, row in enumerate(rows):
            lists[str(hybrid.customer_ids[row])] = toplist.encode([
                (str(hybrid.product_ids[p]), float(s), names[c]) for p, s, c in zip(top[i], scores[i], source[i],
                                                                                     strict=True)
            ])
    return lists


def popular_list(trend: Any) -> list[dict[str, Any]]:
    order = np.argsort(-trend.counts, kind="stable")[:POPULAR_N]
    return [{"product_id": str(trend.product_ids[i]), "buyers": int(trend.counts[i])} for i in order
            if trend.counts[i] > 0]


def product_rules(rules_model: Recommender) -> dict[str, list[dict[str, Any]]]:
    assert isinstance(rules_model, RulesRecommender)
    out: dict[str, list[dict[str, Any]]] = {}
    single = rules_model.rules[rules_model.rules["antecedents"].map(len) == 1]
    for antecedent, group in single.groupby(single["antecedents"].map(lambda a: a[0]), sort=False):
        out[str(antecedent)] = [
            {"product_id": c[0], "support": round(s, 5), "confidence": round(conf, 4), "lift": round(lift, 3)}
            for c, s, conf, lift in zip(group["consequents"], group["support"], group["confidence"], group["lift"],
                                        strict=True)
        ][:RULES_PER_PRODUCT]
    return out


def _category_rules(lines: pd.DataFrame) -> list[dict[str, Any]]:
    baskets, items = basket_matrix(lines, item_column="category")
    rules = mine_rules(baskets, items, CATEGORY_MIN_SUPPORT, 0.0, max_len=3, min_lift=CATEGORY_MIN_LIFT)
    top = rules.head(CATEGORY_RULES).round({"support": 5, "confidence": 4, "lift": 3})
    top = top.assign(antecedents=top["antecedents"].map(list), consequents=top["consequents"].map(list))
    return _records(top[["antecedents", "consequents", "support", "confidence", "lift"]])


def _segment_rows(segments: pd.DataFrame) -> dict[str, dict[str, Any]]:
    columns = ["segment", "r", "f", "m", "recency_days", "frequency", "monetary"]
    rows = _records(segments[columns].astype({"segment": str}))
    return dict(zip(segments["customer_id"].astype(str), rows, strict=True))


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-ready rows (numpy scalars become Python numbers)."""
    records: list[dict[str, Any]] = json.loads(frame.to_json(orient="records"))
    return records


def _products(lines: pd.DataFrame) -> dict[str, dict[str, Any]]:
    latest = lines.drop_duplicates("product_id", keep="last")
    return {str(p): {"name": str(n), "category": str(c)}
            for p, n, c in zip(latest["product_id"], latest["product_name"], latest["category"], strict=True)}

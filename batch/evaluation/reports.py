"""The files a run leaves for people: the evaluation (JSON, markdown, plot), the exported lists and the model
card."""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from batch import eda
from batch.evaluation.result import Evaluation
from batch.evaluation.split import KS, VARIANTS, TemporalSplit
from batch.interactions import Interactions
from batch.models import Recommender
from common.data.load import DataOrigin, LoadedData


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
        first = next(iter(rows.values()))
        customers, eligible = int(first["customers"]), int(first.get("eligible_customers", first["customers"]))
        sampled = f", a seeded sample of the {eligible:,} who bought on both sides" if eligible > customers else ""
        lines.append(f"\n## {variant.replace('_', ' ')} ({customers:,} customers{sampled})\n")
        lines.append("| model | " + " | ".join(columns) + " |")
        lines.append("|---|" + "---:|" * len(columns))
        for name, metrics in rows.items():
            lines.append(f"| {name} | " + " | ".join(f"{metrics[c]:.4f}" for c in columns) + " |")
    lines.append(ranker_markdown(result))
    if result.coverage:
        lines.append("\n## Coverage (products each model can score above zero, training data of the test split)\n")
        lines.append("| model | products | of | share of lines | share of customers |\n|---|---:|---:|---:|---:|")
        for name, c in result.coverage.items():
            lines.append(f"| {name} | {int(c['products']):,} | {int(c['of_products']):,} | {c['lines_share']:.4f} | "
                         f"{c['customers_share']:.4f} |")
    if result.case_study:
        cs = result.case_study
        lines.append(f"\n## The case study's in-sample protocol (NOT a holdout: fitted and scored on the same "
                     f"purchases; {cs['customers']} customers x {cs['products']} products)\n")
        lines.append("| model | precision@5 | precision@10 | precision@20 |\n|---|---:|---:|---:|")
        for name in ("nmf", "popularity", "published"):
            lines.append(f"| {name} | " + " | ".join(f"{cs[name][f'precision@{k}']:.4f}" for k in KS) + " |")
    if result.cold_start:
        lines.append(cold_start_markdown(result.cold_start))
    return "\n".join(lines) + "\n"


def ranker_markdown(result: Evaluation) -> str:
    """The ranker: what it was trained on, the recall of its candidates, what its features weigh, the ablations
    and its paired intervals against the strongest simple methods (or why the blend is served instead)."""
    summary = result.ranker.summary()
    if not summary["trained"]:
        return f"\n## Ranker\n\nNot trained: {summary['reason']}. The blend (row `hybrid`) is served.\n"
    out = [f"\n## Ranker (LightGBM LambdaMART, served)\n\nTrained on {summary['training_rows']:,} candidates of the "
           f"windows after {', '.join(summary['training_cutoffs'])} (labels: the next "
           f"{(pd.Timestamp(result.split) - pd.Timestamp(result.validation_split)).days} days), early-stopped and "
           f"its settings chosen on the validation period: {summary['params']}, {summary['trees']} trees. "
           f"{summary['candidates_per_customer']} candidates per customer.\n",
           "| generator | candidate recall@100 (all items, test) |\n|---|---:|"]
    out += [f"| {name} | {value:.4f} |" for name, value in summary["candidate_recall@100"].items()]
    out.append("\n| paired NDCG@10, ranker minus | variant | difference | 95% interval | customers |\n"
               "|---|---|---:|---|---:|")
    for variant, rows in summary["paired_ndcg@10"].items():
        out += [f"| {name} | {variant.replace('_', ' ')} | {d['difference']:+.4f} | {d['ci_low']:+.4f} .. "
                f"{d['ci_high']:+.4f} | {d['customers']:,} |" for name, d in rows.items()]
    out.append("\n| feature | share of the gain |\n|---|---:|")
    out += [f"| {name} | {share:.4f} |" for name, share in list(summary["feature_importance"].items())[:25]]
    out.append("\nAblations (same settings, trained without a group of features): the rows `ranker (...)` of the "
               "tables above.")
    return "\n".join(out) + "\n"


def cold_start_markdown(cold: dict[str, Any]) -> str:
    """The cohort-vs-global table and the decision, for people."""
    out = [f"\n## Demographic cold start: cohort vs global best-sellers on each customer's first order from "
           f"{cold['split']}\n"]
    for population in ("new_customers", "all_customers"):
        block = cold[population]
        sample = f" (a seeded sample of {block['eligible']:,})" if block.get("eligible", 0) > block["customers"] else ""
        out.append(f"\n{population.replace('_', ' ')}: {block['customers']} customers with a profile{sample}\n")
        out.append("| list | precision@5 | recall@10 | ndcg@10 | hit_rate@10 |\n|---|---:|---:|---:|---:|")
        for name, metrics in block.items():
            if isinstance(metrics, dict):
                out.append(f"| {name} | {metrics['precision@5']:.4f} | {metrics['recall@10']:.4f} | "
                           f"{metrics['ndcg@10']:.4f} | {metrics['hit_rate@10']:.4f} |")
        shares = [f"{name.removeprefix('served from a cohort, ')} {share:.0%}" for name, share in block.items()
                  if name.startswith("served from a cohort")]
        out.append(f"\nled by a cohort list (not the fallback): {', '.join(shares)}")
    d = cold["decision"]
    verdict = "served" if d["serve_cohorts"] else "not served (global best-sellers stay)"
    out.append(f"\nDecision on {d['population'].replace('_', ' ')} ({d['customers']}), {d['window']}: cohort "
               f"{d['metric']} {d['cohort']:.4f} vs global {d['global']:.4f}, paired difference "
               f"{d['difference']:+.4f} (95% CI {d['ci_low']:+.4f} .. {d['ci_high']:+.4f}): cohort lists {verdict}.")
    return "\n".join(out)


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


def model_card(version: str, data: LoadedData, summary: dict[str, Any], evaluation: Evaluation,
               segments: pd.DataFrame, full: Interactions, coverage: dict[str, dict[str, float]],
               engine: str = "single-machine", engine_details: dict[str, str] | None = None) -> dict[str, Any]:
    headline = {v: {m: round(evaluation.table[v][evaluation.served][m], 4)
                    for m in ("precision@5", "ndcg@10", "recall@10")} for v in VARIANTS}
    return {
        "version": version,
        "model": evaluation.served,
        "ranker": evaluation.ranker.summary(),
        "engine": engine,
        "data_window": summary["window"],
        "source": source_card(data.origin, summary["window"]),
        "data": summary["totals"],
        "matrix": {"customers": full.shape[0], "products": full.shape[1], "nonzero": int(full.orders.nnz)},
        "coverage": coverage,
        "memory_plan": evaluation.plan,
        "params": evaluation.tuned.params,
        "weights": evaluation.tuned.weights,
        "headline": headline,
        "evaluation": evaluation.summary(),
        "cleaning": data.report.to_dict(),
        "currency": shop_currency(data),
        # The source files' cleaning reports as recorded when they were replayed (what never reached the topic).
        **({"source_reports": data.source_reports} if data.source_reports else {}),
        "eda": summary,
        "segments": segments.to_dict(orient="records"),
        "built_with": {"python": platform.python_version()} | (engine_details or {}),
    }


def shop_currency(data: LoadedData) -> str:
    """The currency the data's mapping names: the newest replayed source file's (a topic has none of its own),
    else the file read."""
    for report in reversed(data.source_reports):
        currency = report.get("cleaning", {}).get("currency")
        if currency:
            return str(currency)
    return data.report.currency


def source_card(origin: DataOrigin | None, window: dict[str, str]) -> dict[str, Any]:
    """Which source the run read (file, topic, archive, archive+topic), where, and the event-time window it got."""
    if origin is None:
        return {"kind": "in-memory", "window": window}
    return {"kind": origin.kind, "location": origin.location, "window": window, **origin.counts}

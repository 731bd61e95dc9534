"""The files a run leaves for people: the evaluation (JSON, markdown, plot), the exported lists and the model
card."""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from batch import eda
from batch.evaluate import KS, VARIANTS, TemporalSplit
from batch.interactions import Interactions
from batch.models import Recommender
from common.data.load import LoadedData

if TYPE_CHECKING:
    # For annotations only: the pipeline imports this module to write what it evaluated.
    from batch.pipeline import Evaluation


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


def model_card(version: str, data: LoadedData, summary: dict[str, Any], evaluation: Evaluation,
               segments: pd.DataFrame, full: Interactions, engine: str = "single-machine",
               engine_details: dict[str, str] | None = None) -> dict[str, Any]:
    headline = {v: {m: round(evaluation.table[v]["hybrid"][m], 4) for m in ("precision@5", "ndcg@10",
                                                                                  "recall@10")} for v in VARIANTS}
    return {
        "version": version,
        "model": "hybrid",
        "engine": engine,
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
        "built_with": {"python": platform.python_version()} | (engine_details or {}),
    }

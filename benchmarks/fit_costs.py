"""What one fit of each candidate generator, and the ranker's feature history, costs on a shop's history: the
training side (all but the last 60 days) of a history folder is loaded and cleaned, turned into `Interactions`,
and every generator is fitted with its default settings and the memory plan, one after the other, timed. The
nightly job pays this several times (validation, each ranker window, test, the refit), so it is where the batch's
time goes at shop scale. Then what the ranker's stage one costs per customer: each generator's candidates for a
seeded sample of 4,096 customers (twice: a second pass over the same customers is what an evaluation pays again),
and the whole collection with its features for 4,096 other customers, which the served lists pay once per
customer. Past 50,000 customers, TIFU-KNN's neighbour search: every customer's by `clustered_neighbours`, against
a brute-force search over all customers' embeddings for a seeded sample of 2,000 (scaled to all of them), and the
share of the brute-force neighbours the clustered search finds. Prints a table and writes JSON.

    .venv/bin/python -m benchmarks.fit_costs --data /tmp/recsys-scale/data [--preset case_study]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd
from implicit.cpu.topk import topk

from batch.evaluation.result import EvaluationOptions
from batch.evaluation.tuning import BASELINES, HYBRID_COMPONENTS, Tuned, build
from batch.interactions import Interactions
from batch.models import Recommender
from batch.models.tifu import EXACT_NEIGHBOURS_MAX, TifuKnnRecommender, clustered_neighbours
from batch.ranker.candidates import GENERATOR_POOL
from batch.ranker.history import History
from batch.ranker.model import GENERATORS, OWN, candidate_features
from common.data import load_history, load_mapping

HELD_OUT_DAYS = 60
BRUTE_FORCE_SAMPLE = 2_000
CANDIDATE_ROWS = 4_096
T = TypeVar("T")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--preset", default="case_study")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/fit_costs.json"))
    args = parser.parse_args()
    timings: dict[str, float] = {}

    def timed(name: str, work: Callable[[], T]) -> T:
        started = time.perf_counter()
        result = work()
        timings[name] = round(time.perf_counter() - started, 2)
        print(f"{name:<36} {timings[name]:>8.2f} s", flush=True)
        return result

    lines = timed("load and clean", lambda: load_history(args.data, load_mapping(args.preset)).lines)
    train = lines[lines["event_time"] < lines["event_time"].max() - pd.Timedelta(days=HELD_OUT_DAYS)]
    data = timed("interactions", lambda: Interactions.from_lines(train))
    plan, tuned = EvaluationOptions().plan(lines), Tuned()
    fitted: dict[str, Recommender] = {}
    for name in dict.fromkeys((*BASELINES, *HYBRID_COMPONENTS)):
        fitted[name] = timed(name, partial(build(name, tuned.params[name], plan).fit, data))
    history = timed("ranker history", lambda: History.of(data))
    fits = sum(timings.values()) - timings["load and clean"] - timings["interactions"]
    print(f"{'one fit of all':<36} {fits:>8.2f} s  ({data.shape[0]:,} customers x {data.shape[1]:,} products, "
          f"{len(train):,} lines)")
    # Two disjoint seeded samples: the generators' passes over the first, the stage one over the second (whose
    # customers no model has seen asked for, as in the served lists).
    drawn = np.random.default_rng(0).choice(data.shape[0], min(2 * CANDIDATE_ROWS, data.shape[0]), replace=False)
    rows, fresh = np.sort(drawn[:len(drawn) // 2]), np.sort(drawn[len(drawn) // 2:])
    generators = {name: fitted[name] for name in GENERATORS}
    for name, model in generators.items():
        for attempt in ("", " again"):
            timed(f"{name} candidates{attempt}",
                  partial(model.candidates, rows, GENERATOR_POOL, exclude_seen=name != OWN))
    timed("stage one", lambda: candidate_features(generators, history, fresh))
    per_customer_ms = 1e3 * timings["stage one"] / len(fresh)
    print(f"stage one per customer: {per_customer_ms:.2f} ms (x {data.shape[0]:,} customers: "
          f"{per_customer_ms * data.shape[0] / 1e3:,.0f} s of the served lists)")
    neighbours = tifu_neighbours(fitted["tifu"], timed, timings) if data.shape[0] > EXACT_NEIGHBOURS_MAX else None
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"data": str(args.data), "lines": len(train), "shape": list(data.shape),
                                    "tifu_neighbours": neighbours,
                                    "seconds": timings, "one_fit_of_all_s": round(fits, 1),
                                    "candidate_customers": len(rows), "stage_one_customers": len(fresh),
                                    "stage_one_ms_per_customer": round(per_customer_ms, 3),
                                    "machine": platform.platform()}, indent=2))


def tifu_neighbours(model: Recommender, timed: Callable[[str, Callable[[], np.ndarray]], np.ndarray],
                    timings: dict[str, float]) -> dict[str, float]:
    """Every customer's neighbours by the clustered search, against brute force over the same embeddings."""
    assert isinstance(model, TifuKnnRecommender)
    k = min(model.neighbours, len(model.customer_ids) - 1)
    embedding = timed("tifu embedding (randomised SVD)", model._embedding)
    found = timed("tifu neighbours, clustered, all", lambda: clustered_neighbours(embedding, k))
    sample = np.sort(np.random.default_rng(1).choice(len(embedding), BRUTE_FORCE_SAMPLE, replace=False))
    exact = timed("tifu neighbours, brute force, sample",
                  lambda: np.asarray(topk(embedding, embedding[sample], k + 1, num_threads=0)[0]))
    recall = float(np.mean([len(np.intersect1d(f, e[e != row])) / k
                            for f, e, row in zip(found[sample], exact, sample, strict=True)]))
    brute_all = timings["tifu neighbours, brute force, sample"] * len(embedding) / BRUTE_FORCE_SAMPLE
    print(f"tifu neighbours: clustered {timings['tifu neighbours, clustered, all']:.1f} s for "
          f"{len(embedding):,} customers, brute force {brute_all:.1f} s (scaled from {BRUTE_FORCE_SAMPLE:,}); "
          f"{recall:.1%} of the brute-force neighbours found")
    return {"customers": len(embedding), "clustered_s": timings["tifu neighbours, clustered, all"],
            "brute_force_scaled_s": round(brute_all, 1), "recall_of_brute_force": round(recall, 4)}


if __name__ == "__main__":
    main()

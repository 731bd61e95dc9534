"""Should `/recommend` evaluate the ranker per request? What it would cost, against what serving has: a served
ranker (a `recsys batch run` artifact) is timed on one customer's candidates (a few hundred rows of features),
as a request would have to, and the bytes a version would need in Redis to hold every customer's candidate
features are counted. The served path instead reads the ranker's published list and adjusts it live (drops what
the customer bought since the model, adds rules fired by today's basket: `api/ranking.py`). Prints a table and
writes JSON.

    .venv/bin/python -m benchmarks.ranker_serving --model artifacts/models/<version>/ranker [--customers 300]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from batch.models import Recommender
from batch.ranker.model import RankerRecommender, candidate_features
from benchmarks.stats import percentile

BAR_CPU_US = 216  # /recommend's CPU per request at c=32 on one worker (README, "API latency")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/ranker_serving.json"))
    args = parser.parse_args()
    ranker = Recommender.load(args.model)
    assert isinstance(ranker, RankerRecommender) and ranker.booster is not None and ranker.history is not None
    rows = np.random.default_rng(0).choice(len(ranker.customer_ids), size=min(args.customers,
                                                                             len(ranker.customer_ids)), replace=False)
    predict_us, features_us, sizes = [], [], []
    with threadpool_limits(1):  # one request on one core, as an API worker has
        for row in rows:
            started = time.perf_counter()
            found, features = candidate_features(ranker.models, ranker.history, np.array([row]))
            middle = time.perf_counter()
            ranker.booster.predict(features[:, ranker.columns], num_threads=1)
            done = time.perf_counter()
            features_us.append((middle - started) * 1e6)
            predict_us.append((done - middle) * 1e6)
            sizes.append(len(found))
    candidates = float(np.mean(sizes))
    stored = candidates * len(ranker.columns) * 4 * len(ranker.customer_ids)
    predict = {"p50": round(percentile(predict_us, 50)), "p99": round(percentile(predict_us, 99))}
    gather = {"p50": round(percentile(features_us, 50)), "p99": round(percentile(features_us, 99))}
    report = {
        "machine": platform.platform(), "model": str(args.model), "customers_timed": len(rows),
        "candidates_per_customer": round(candidates, 1), "features": len(ranker.columns),
        "predict_us": predict, "candidates_and_features_us": gather,
        "feature_bytes_for_every_customer": round(stored),
        "customers": len(ranker.customer_ids), "recommend_cpu_per_request_us": BAR_CPU_US,
    }
    print("| per request | p50 | p99 |\n|---|---:|---:|")
    print(f"| LightGBM predict on one customer's {candidates:.0f} candidates | {predict['p50']:,} us | "
          f"{predict['p99']:,} us |")
    print(f"| generators' candidates + features for one customer (batch code) | "
          f"{gather['p50']:,} us | {gather['p99']:,} us |")
    print(f"\n/recommend's whole CPU per request today: {BAR_CPU_US} us. Holding every customer's candidate features "
          f"in Redis instead of computing them: {stored / 2**20:,.0f} MiB for {len(ranker.customer_ids):,} "
          "customers.")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()

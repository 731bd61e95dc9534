"""The nightly batch job on UCI Online Retail, end to end (load from file, EDA, evaluation, refit, segments,
category rules, publish to the local stack's Redis under its own key prefix): wall seconds and peak RSS per stage
against the targets (total < 60 s, peak RSS < 2 GiB); then Apriori vs FP-growth on the same order baskets, and the
evaluation headline. Prints tables and writes JSON.

    .venv/bin/python benchmarks/batch_refit.py [--data ../shared/data/online_retail_uci/online_retail.csv.gz]
        [--out benchmarks/results/batch_refit.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import redis

from batch.evaluation.result import EvaluationOptions
from batch.pipeline import RunResult, run
from batch.publish import Publishing
from batch.rule_mining import Algorithm, basket_matrix, frequent_itemsets
from batch.source import from_file
from batch.stages import Stages
from common.keys import KeyLayout
from common.settings import get_settings

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "online_retail_uci" / "online_retail.csv.gz"
PRESET = "uci"
SPLIT_DATE = pd.Timestamp("2011-11-09")
VALIDATION_DATE = pd.Timestamp("2011-10-09")
KEY_PREFIX = "bench-batch"
TARGET_TOTAL_S = 60.0
TARGET_PEAK_RSS_MIB = 2048.0
MINING_CASES: tuple[tuple[float, int | None], ...] = ((0.01, 2), (0.005, 2), (0.01, None))
HEADLINE_METRICS = ("ndcg@10", "precision@5")


def say(message: str) -> None:
    print(message, flush=True)


@dataclass
class Refit:
    lines: pd.DataFrame
    result: RunResult
    stages: Stages
    total_s: float
    ru_maxrss_mib: float


def refit(data: Path, artifacts: Path, client: redis.Redis, keys: KeyLayout, publishing: Publishing) -> Refit:
    """The CLI's `batch run --data` (load/clean as a stage), timed as a whole."""
    stages = Stages(report=say)
    started = time.perf_counter()
    with stages.stage("load/clean"):
        loaded = from_file(data, PRESET, None, None)
    options = EvaluationOptions(split_date=SPLIT_DATE, validation_date=VALIDATION_DATE)
    result = run(loaded, options, artifacts, client, keys, stages, say, publishing)
    total_s = time.perf_counter() - started
    ru_maxrss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return Refit(loaded.lines, result, stages, total_s, ru_maxrss_mib)


def supports(itemsets: pd.DataFrame) -> dict[frozenset[str], float]:
    return {frozenset(s): round(float(p), 9) for s, p in zip(itemsets["itemsets"], itemsets["support"], strict=True)}


def compare_mining(lines: pd.DataFrame) -> list[dict[str, Any]]:
    baskets, items = basket_matrix(lines)
    rows = []
    for min_support, max_len in MINING_CASES:
        found: dict[Algorithm, dict[frozenset[str], float]] = {}
        seconds: dict[Algorithm, float] = {}
        for algorithm in ("apriori", "fpgrowth"):
            started = time.perf_counter()
            itemsets = frequent_itemsets(baskets, items, min_support, max_len, algorithm=algorithm)
            seconds[algorithm] = time.perf_counter() - started
            found[algorithm] = supports(itemsets)
        rows.append({
            "min_support": min_support, "max_len": max_len, "baskets": baskets.shape[0],
            "itemsets": len(found["apriori"]), "fpgrowth_itemsets": len(found["fpgrowth"]),
            "apriori_s": seconds["apriori"], "fpgrowth_s": seconds["fpgrowth"],
            "same_itemsets": found["apriori"] == found["fpgrowth"],
        })
    return rows


def headline(table: dict[str, dict[str, dict[str, float]]]) -> dict[str, dict[str, Any]]:
    """Per variant: the hybrid's metrics and, per metric, the best other row (model name, value)."""
    out: dict[str, dict[str, Any]] = {}
    for variant, rows in table.items():
        baselines = [(name, metrics) for name, metrics in rows.items() if name != "hybrid"]
        best: dict[str, dict[str, Any]] = {}
        for metric in HEADLINE_METRICS:
            model, value = max(((name, metrics[metric]) for name, metrics in baselines), key=lambda row: row[1])
            best[metric] = {"model": model, "value": value}
        out[variant] = {"hybrid": {m: rows["hybrid"][m] for m in HEADLINE_METRICS}, "best_baseline": best}
    return out


def print_tables(report: dict[str, Any]) -> None:
    print()
    print(f"{'stage':<28} {'seconds':>8} {'peak RSS MiB':>13}")
    for stage in report["stages"]:
        print(f"{stage['name']:<28} {stage['seconds']:>8.2f} {stage['peak_rss_mib']:>13.0f}")
    print(f"{'(outside stages)':<28} {report['outside_stages_s']:>8.2f}")
    print(f"{'total':<28} {report['total_s']:>8.2f} {report['peak_rss_mib']:>13.0f}")
    print(f"(peak RSS = max over stages {report['stages_peak_rss_mib']:.0f} MiB and ru_maxrss "
          f"{report['ru_maxrss_mib']:.0f} MiB)")
    print()
    print(f"{'target':<16} {'measured':>9} {'limit':>9} {'result':>7}")
    for name, target in report["targets"].items():
        print(f"{name:<16} {target['measured']:>9.1f} {'< ' + str(target['limit']):>9} "
              f"{'PASS' if target['pass'] else 'FAIL':>7}")
    print()
    print(f"{'support':>8} {'max_len':>8} {'itemsets':>9} {'apriori s':>10} {'fpgrowth s':>11} {'same itemsets':>14}")
    for row in report["mining"]:
        print(f"{row['min_support']:>8} {row['max_len']!s:>8} {row['itemsets']:>9,} {row['apriori_s']:>10.2f} "
              f"{row['fpgrowth_s']:>11.2f} {'yes' if row['same_itemsets'] else 'no':>14}")
    print(f"(on {report['mining'][0]['baskets']:,} order baskets)")
    print()
    print(f"{'variant':<10} {'metric':<12} {'hybrid':>7} {'best baseline':>14}  model")
    for variant, scores in report["headline"].items():
        for metric in HEADLINE_METRICS:
            best = scores["best_baseline"][metric]
            print(f"{variant:<10} {metric:<12} {scores['hybrid'][metric]:>7.4f} {best['value']:>14.4f}  "
                  f"{best['model']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/batch_refit.json"))
    args = parser.parse_args()

    settings = get_settings()
    keys = KeyLayout(KEY_PREFIX)
    client = redis.Redis.from_url(settings.redis_url)
    client.ping()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-batch-") as artifacts:
            refitted = refit(args.data, Path(artifacts), client, keys, Publishing.from_settings(settings))
    finally:
        doomed = list(client.scan_iter(match=keys.all_keys_pattern(), count=1000))
        if doomed:
            client.unlink(*doomed)
        client.close()
    say("mining frequent itemsets (apriori vs fpgrowth) ...")
    mining = compare_mining(refitted.lines)

    stages = [asdict(record) for record in refitted.stages.records]
    stages_peak = refitted.stages.peak_rss_mib()
    peak_rss_mib = max(stages_peak, refitted.ru_maxrss_mib)
    published = refitted.result.published
    report: dict[str, Any] = {
        "data": str(args.data),
        "split_date": str(SPLIT_DATE.date()),
        "validation_date": str(VALIDATION_DATE.date()),
        "version": refitted.result.version,
        "stages": stages,
        "outside_stages_s": refitted.total_s - refitted.stages.total_seconds(),
        "total_s": refitted.total_s,
        "stages_peak_rss_mib": stages_peak,
        "ru_maxrss_mib": refitted.ru_maxrss_mib,
        "peak_rss_mib": peak_rss_mib,
        "targets": {
            "total seconds": {"measured": refitted.total_s, "limit": TARGET_TOTAL_S,
                              "pass": refitted.total_s < TARGET_TOTAL_S},
            "peak RSS MiB": {"measured": peak_rss_mib, "limit": TARGET_PEAK_RSS_MIB,
                             "pass": peak_rss_mib < TARGET_PEAK_RSS_MIB},
        },
        "published": asdict(published) if published else None,
        "mining": mining,
        "headline": headline(refitted.result.evaluation.table),
        "machine": {"nproc": len(os.sched_getaffinity(0)), "python": platform.python_version()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print_tables(report)
    print(f"JSON: {args.out}")


if __name__ == "__main__":
    main()

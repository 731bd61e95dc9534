"""The nightly batch on one machine and on Spark, on the same data and split: `batch run --no-publish` as the CLI
runs it with each engine (the publish is the same driver code for both, so it is left out). Wall seconds per
stage, total, peak RSS of this process and of the Spark driver JVM (in local mode the executors run in it), and
each engine's evaluation table (NDCG@10, P@5: its own models and its served hybrid). Prints a table and writes
JSON.

    .venv/bin/python -m benchmarks.spark_engine [--data ../shared/data/online_retail_uci/online_retail.csv.gz]
        [--preset uci] [--split-date 2011-11-09 --validation-date 2011-10-09] [--spark-master local[2]]
        [--out benchmarks/results/spark_engine.json]

Run it alone (flock -x /tmp/bench.lock ...): both engines use every core they are given.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd
import pyspark

from batch.evaluation.result import EvaluationOptions
from batch.evaluation.split import VARIANTS
from batch.pipeline import RunResult, run
from batch.source import from_file
from batch.spark.engine import run_spark
from batch.spark.session import SparkOptions
from batch.stages import Stages
from common.keys import KeyLayout

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "online_retail_uci" / "online_retail.csv.gz"
ROWS = ("popularity", "repeat", "ease", "als", "als (spark)", "rules", "rules (spark)", "hybrid")


def say(message: str) -> None:
    print(message, flush=True)


def engine_run(name: str, args: argparse.Namespace, artifacts: Path) -> dict[str, Any]:
    """One `batch run --no-publish` from the file, load included, timed as a whole."""
    say(f"== {name}")
    stages = Stages(report=say)
    started = time.perf_counter()
    with stages.stage("load/clean"):
        loaded = from_file(args.data, args.preset, None, None)
    options = EvaluationOptions(split_date=args.split_date, validation_date=args.validation_date)
    keys = KeyLayout("bench-spark")
    jvm_peak: float | None = None
    if name == "spark":
        spark = SparkOptions(master=args.spark_master, driver_memory=args.driver_memory,
                             staging=str(artifacts / "staging"))
        spark_run = run_spark(loaded, options, spark, artifacts, None, keys, stages, say)
        result: RunResult = spark_run.result
        jvm_peak = spark_run.jvm_peak_rss_mib
    else:
        result = run(loaded, options, artifacts, None, keys, stages, say)
    total_s = time.perf_counter() - started
    return {
        "engine": name,
        "stages": [asdict(record) for record in stages.records],
        "total_s": total_s,
        # Sampled within this run's stages: the process runs both engines, so its lifetime maximum would mix them.
        "python_peak_rss_mib": stages.peak_rss_mib(),
        "jvm_peak_rss_mib": jvm_peak,
        "table": {v: {row: {m: result.evaluation.table[v][row][m] for m in ("ndcg@10", "precision@5")}
                      for row in ROWS if row in result.evaluation.table[v]} for v in VARIANTS},
        "weights": result.evaluation.tuned.weights,
    }


def print_tables(report: dict[str, Any]) -> None:
    single, spark = report["runs"]["single-machine"], report["runs"]["spark"]
    seconds = {run["engine"]: {s["name"]: s["seconds"] for s in run["stages"]} for run in (single, spark)}
    names = list(dict.fromkeys([*seconds["single-machine"], *seconds["spark"]]))
    print()
    print(f"{'stage':<28} {'single-machine s':>17} {'spark s':>9}")
    for name in names:
        one, many = seconds["single-machine"].get(name), seconds["spark"].get(name)
        print(f"{name:<28} {'' if one is None else f'{one:.2f}':>17} {'' if many is None else f'{many:.2f}':>9}")
    print(f"{'total (wall)':<28} {single['total_s']:>17.1f} {spark['total_s']:>9.1f}")
    print(f"{'peak RSS, Python MiB':<28} {single['python_peak_rss_mib']:>17.0f} {spark['python_peak_rss_mib']:>9.0f}")
    jvm = spark["jvm_peak_rss_mib"]
    print(f"{'peak RSS, Spark JVM MiB':<28} {'':>17} {'' if jvm is None else f'{jvm:.0f}':>9}")
    print(f"spark / single-machine wall time: {spark['total_s'] / single['total_s']:.2f}x")
    print()
    print(f"{'variant':<10} {'model':<15} {'single-machine':>15} {'spark':>8}   (NDCG@10)")
    for variant in VARIANTS:
        for row in ROWS:
            one = single["table"][variant].get(row, {}).get("ndcg@10")
            many = spark["table"][variant].get(row, {}).get("ndcg@10")
            if one is None and many is None:
                continue
            print(f"{variant:<10} {row:<15} {'' if one is None else f'{one:.4f}':>15} "
                  f"{'' if many is None else f'{many:.4f}':>8}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--preset", default="uci")
    parser.add_argument("--split-date", type=pd.Timestamp, default=pd.Timestamp("2011-11-09"))
    parser.add_argument("--validation-date", type=pd.Timestamp, default=pd.Timestamp("2011-10-09"))
    parser.add_argument("--spark-master", default="local[2]")
    parser.add_argument("--driver-memory", default="4g")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/spark_engine.json"))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-spark-") as folder:
        runs = {name: engine_run(name, args, Path(folder) / name) for name in ("single-machine", "spark")}
    report = {
        "data": str(args.data), "preset": args.preset, "split_date": str(args.split_date.date()),
        "validation_date": str(args.validation_date.date()), "spark_master": args.spark_master,
        "driver_memory": args.driver_memory, "runs": runs,
        "machine": {"nproc": len(os.sched_getaffinity(0)), "python": platform.python_version(),
                    "pyspark": pyspark.__version__},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print_tables(report)
    print(f"JSON: {args.out}")


if __name__ == "__main__":
    main()

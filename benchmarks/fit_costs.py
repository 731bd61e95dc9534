"""What one fit of each candidate generator, and the ranker's feature history, costs on a shop's history: the
training side (all but the last 60 days) of a history folder is loaded and cleaned, turned into `Interactions`,
and every generator is fitted with its default settings and the memory plan, one after the other, timed. The
nightly job pays this several times (validation, each ranker window, test, the refit), so it is where the batch's
time goes at shop scale. Prints a table and writes JSON.

    .venv/bin/python -m benchmarks.fit_costs --data /tmp/recsys-scale/data [--preset case_study]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import pandas as pd

from batch.evaluation.result import EvaluationOptions
from batch.evaluation.tuning import BASELINES, HYBRID_COMPONENTS, Tuned, build
from batch.interactions import Interactions
from batch.ranker.history import History
from common.data import load_history, load_mapping

HELD_OUT_DAYS = 60


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--preset", default="case_study")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/fit_costs.json"))
    args = parser.parse_args()
    timings: dict[str, float] = {}

    def timed(name: str, work: object) -> object:
        started = time.perf_counter()
        result = work() if callable(work) else work
        timings[name] = round(time.perf_counter() - started, 1)
        print(f"{name:<20} {timings[name]:>8.1f} s", flush=True)
        return result

    lines = timed("load and clean", lambda: load_history(args.data, load_mapping(args.preset)).lines)
    assert isinstance(lines, pd.DataFrame)
    train = lines[lines["event_time"] < lines["event_time"].max() - pd.Timedelta(days=HELD_OUT_DAYS)]
    data = timed("interactions", lambda: Interactions.from_lines(train))
    assert isinstance(data, Interactions)
    plan, tuned = EvaluationOptions().plan(lines), Tuned()
    for name in dict.fromkeys((*BASELINES, *HYBRID_COMPONENTS)):
        timed(name, lambda name=name: build(name, tuned.params[name], plan).fit(data))
    timed("ranker history", lambda: History.of(data))
    fits = sum(t for name, t in timings.items() if name not in ("load and clean", "interactions"))
    print(f"{'one fit of all':<20} {fits:>8.1f} s  ({data.shape[0]:,} customers x {data.shape[1]:,} products, "
          f"{len(train):,} lines)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"data": str(args.data), "lines": len(train), "shape": list(data.shape),
                                    "seconds": timings, "one_fit_of_all_s": round(fits, 1),
                                    "machine": platform.platform()}, indent=2))


if __name__ == "__main__":
    main()

"""The A/B experiment replayed on real data, with the commands a user runs: on its own local stack, publish a
model fitted before the split date, run the stream worker, replay the period after it with simulated visits
(in their own experiment, `replay-<split date>`), and report conversion and revenue per exposed customer per group,
the always-valid test and decision beside the fixed-horizon z-test, and the sample-ratio check. Writes JSON.
The uplift is not causal: the orders are historical, so they do not depend on what was shown.

    .venv/bin/python -m benchmarks.replayed_experiment [--data ../shared/data/online_retail_uci/online_retail.csv.gz]
        [--preset uci] [--split 2011-11-09] [--visit-k 10]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import redis

from common.assignment import replay_experiment
from common.keys import KeyLayout
from stack import LocalStack
from stack.scratch import settings_env, stack_settings, start_worker, stop_worker

RECSYS = str(Path(sys.executable).parent / "recsys")
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared/data/online_retail_uci/online_retail.csv.gz"


def step(title: str, command: list[str], env: dict[str, str], cwd: Path) -> str:
    print(f"$ recsys {' '.join(command)}", flush=True)
    started = time.perf_counter()
    result = subprocess.run([RECSYS, *command], env=env, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"{title} failed:\n{result.stderr[-2000:]}")
    print(f"  {title}: {time.perf_counter() - started:.1f} s", flush=True)
    return result.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--preset", default="uci")
    parser.add_argument("--split", default="2011-11-09")
    parser.add_argument("--visit-k", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/replayed_experiment.json"))
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-ab-"))
    settings = stack_settings(work / "run", key_prefix="benchab")
    env = settings_env(settings) | {"RECSYS_ARTIFACTS_DIR": str(work / "artifacts")}
    data = str(args.data.resolve())
    local = LocalStack(settings)
    local.up()
    worker = None
    try:
        step("model fitted before the split", ["batch", "run", "--data", data, "--preset", args.preset,
                                               "--until", args.split], env, work)
        worker = start_worker(settings, work / "worker.log")
        out = step("replay with simulated visits", [
            "replay", "--data", data, "--preset", args.preset, "--from", args.split, "--simulate-visits",
            "--visit-k", str(args.visit_k), "--wait", "300"], env, work)
        report = out[out.index("visits served"):]
        print(report)
        client = redis.Redis.from_url(settings.redis_url, decode_responses=True)
        keys = KeyLayout(settings.key_prefix)
        experiment = replay_experiment(date.fromisoformat(args.split))
        groups = {g: client.hgetall(keys.ab_group_counters(experiment, g)) for g in ("control", "treatment")}
    finally:
        if worker is not None:
            stop_worker(worker)
        local.down()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"data": data, "split": args.split, "visit_k": args.visit_k,
                                    "experiment": experiment, "attribution_days": settings.ab_attribution_days,
                                    "groups": groups, "report": report, "nproc": os.cpu_count()}, indent=2))
    print(f"JSON: {args.out}")


if __name__ == "__main__":
    main()

"""Soak: does Redis stay flat when a shop keeps replaying and experimenting? On a stack of its own: publish a model
from UCI Online Retail, then three times replay the whole history with simulated visits under a new experiment
name and end that experiment (`recsys ab stop`'s code path). Redis's used memory after each end is compared with
the first (target: the third within 10% of the first). Prints a table and writes JSON.

    .venv/bin/python -m benchmarks.soak_memory [--data ../shared/data/online_retail_uci/online_retail.csv.gz]
        [--runs 3] [--out benchmarks/results/soak_memory.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, cast

import redis

from api.services.ab_lifecycle import stop_experiment
from api.state import close_state, create_state
from common.keys import KeyLayout
from common.settings import Settings
from stack import LocalStack
from stack.scratch import settings_env, stack_settings, start_worker, stop_worker
from stack.system import RECSYS

UCI = Path("../shared/data/online_retail_uci/online_retail.csv.gz")
FAMILIES = {"per customer (stream)": ":cust:", "experiments": ":ab:", "model versions": ":model:",
            "products": ":prod:", "stream bookkeeping": ":stream:"}


async def end(settings: Settings, experiment: str) -> int:
    state = create_state(settings)
    try:
        return (await stop_experiment(state, experiment)).freed_keys
    finally:
        await close_state(state)


def families(client: redis.Redis, prefix: str) -> dict[str, int]:
    counts = dict.fromkeys(FAMILIES, 0)
    for name in client.scan_iter(match=f"{prefix}:*", count=5000):
        for family, marker in FAMILIES.items():
            if name.startswith(prefix + marker):
                counts[family] += 1
                break
    return counts


def settle(client: redis.Redis, keys: KeyLayout, quiet_s: float = 2.0, timeout_s: float = 600) -> None:
    """Until the worker has written nothing for `quiet_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        last = float(client.hget(keys.stream_stats(), "last_batch_at") or 0)
        if last and time.time() - last > quiet_s:
            return
        time.sleep(0.5)
    raise RuntimeError("the stream did not go quiet")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=UCI)
    parser.add_argument("--preset", default="uci")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/soak_memory.json"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="soak-"))
    settings = stack_settings(work / "run", redis_maxmemory="2gb")
    env = settings_env(settings)
    stack = LocalStack(settings)
    stack.up()
    client = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    keys = KeyLayout(settings.key_prefix)
    worker = start_worker(settings, work / "worker.log")
    rows: list[dict[str, Any]] = []
    try:
        started = time.perf_counter()
        subprocess.run([RECSYS, "batch", "run", "--data", str(args.data.resolve()), "--preset", args.preset],
                       env=env, cwd=work, check=True, capture_output=True)
        print(f"model published in {time.perf_counter() - started:.0f} s", flush=True)
        for run in range(1, args.runs + 1):
            experiment = f"soak-{run}"
            started = time.perf_counter()
            subprocess.run([RECSYS, "replay", "--data", str(args.data.resolve()), "--preset", args.preset,
                            "--simulate-visits", "--experiment", experiment, "--wait", "900"],
                           env=env, cwd=work, check=True, capture_output=True)
            settle(client, keys)
            freed = asyncio.run(end(settings, experiment))
            memory = client.info("memory")
            stats = cast(dict[str, str], client.hgetall(keys.stream_stats()))
            rows.append({"run": run, "experiment": experiment, "seconds": round(time.perf_counter() - started, 1),
                         "processed": int(stats.get("processed", 0)), "duplicates": int(stats.get("duplicates", 0)),
                         "freed_keys": freed, "used_memory": int(memory["used_memory"]),
                         "keys": int(client.dbsize()), "families": families(client, settings.key_prefix)})
            print(f"run {run}: {rows[-1]}", flush=True)
    finally:
        stop_worker(worker)
        stack.down()
    first, last = rows[0]["used_memory"], rows[-1]["used_memory"]
    print("\n| run | experiment | replay + visits, s | processed | duplicates | keys freed at stop | Redis used "
          "memory | keys |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['run']} | {r['experiment']} | {r['seconds']:,.0f} | {r['processed']:,} | {r['duplicates']:,} | "
              f"{r['freed_keys']:,} | {r['used_memory'] / 2**20:,.1f} MiB | {r['keys']:,} |")
    growth = last / first - 1
    print(f"\nafter run {len(rows)} against run 1: {growth:+.1%} (target within +/-10%): "
          f"{'met' if abs(growth) <= 0.10 else 'MISSED'}")
    print("keys by family after the last run:", rows[-1]["families"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": platform.platform(), "data": str(args.data), "runs": rows,
                                    "growth": growth, "target_met": abs(growth) <= 0.10}, indent=2))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()

"""The restart cycle, timed, on a stack of its own: replay most of a synthetic history with the stream worker and
the archiver running, wait until the stream has been idle > 1 s (appendfsync everysec), `kill -9` the broker,
Redis, the worker and the archiver, start the stack again (Redis reloads its append-only file; the local broker
starts empty), check Redis against pandas, start the worker and archiver, replay an overlapping slice, check
again; then a graceful `down` + `up`. Prints a table and writes JSON.

    .venv/bin/python -m benchmarks.restart_cycle [--customers 5000] [--lines 100000] [--out ...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
import redis

from batch.source import from_archive, from_file, read_archive
from common.data import load_history, load_mapping
from common.data.synthetic import SyntheticSpec, write
from common.keys import KeyLayout
from common.settings import Settings
from producers.replay import Pace, replay, to_events
from stack import LocalStack
from stack.scratch import stack_settings, start_archiver, start_worker, stop_worker
from stream_app.state import to_cents

IDLE_S = 1.5


def send(settings: Settings, lines: pd.DataFrame) -> float:
    started = time.perf_counter()
    asyncio.run(replay(settings, to_events(lines), Pace()))
    return time.perf_counter() - started


def wait(condition: Any, what: str, timeout_s: float = 600) -> float:
    started = time.perf_counter()
    while not condition():
        if time.perf_counter() - started > timeout_s:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.1)
    return time.perf_counter() - started


def processed(client: redis.Redis, keys: KeyLayout) -> int:
    return int(client.hget(keys.stream_stats(), "processed") or 0)


def idle(client: redis.Redis, keys: KeyLayout) -> bool:
    return time.time() - float(client.hget(keys.stream_stats(), "last_batch_at") or 0) > IDLE_S


def mismatches(client: redis.Redis, keys: KeyLayout, lines: pd.DataFrame) -> int:
    """Customers whose RFM counters in Redis differ from pandas over `lines` (orders, lines, units, cents)."""
    truth = lines.assign(cents=lines["amount"].map(to_cents)).groupby("customer_id").agg(
        orders=("order_id", "nunique"), lines=("order_id", "size"), units=("units", "sum"),
        monetary_cents=("cents", "sum"))
    pipe = client.pipeline(transaction=False)
    for customer in truth.index:
        pipe.hmget(keys.customer_rfm(customer), list(truth.columns))
    replies = pipe.execute()
    wrong = sum(1 for reply, row in zip(replies, truth.itertuples(index=False), strict=True)
                if [int(v or -1) for v in reply] != [int(x) for x in row])
    return wrong + abs(client.zcard(keys.customers_index()) - len(truth))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/restart_cycle.json"))
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-restart-"))
    write(SyntheticSpec(customers=args.customers, lines=args.lines), work / "shop")
    lines = load_history(work / "shop", load_mapping("case_study")).lines
    first, second = lines.iloc[: len(lines) * 6 // 10], lines.iloc[len(lines) * 4 // 10:]
    settings = stack_settings(work / "run", archive_flush_s=1.0)
    local = LocalStack(settings)
    client = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    keys = KeyLayout(settings.key_prefix)
    t: dict[str, float] = {}
    counts: dict[str, int] = {"history": len(lines), "first_slice": len(first), "second_slice": len(second),
                              "overlap": len(first) + len(second) - len(lines)}
    local.up()
    worker, archiver = start_worker(settings, work / "worker.log"), start_archiver(settings, work / "archiver.log")
    try:
        print(f"replaying {len(first):,} of {len(lines):,} events ...", flush=True)
        t["replay_first"] = send(settings, first)
        t["first_applied_after_replay"] = wait(lambda: processed(client, keys) >= len(first), "the stream")
        t["first_archived_after_applied"] = wait(
            lambda: read_archive(settings.archive_location).rows >= len(first), "the archive")
        wait(lambda: idle(client, keys), "an idle stream")

        started = time.perf_counter()
        for pid in (*(s.pid for s in local.status()), worker.pid, archiver.pid):
            os.kill(pid or 0, signal.SIGKILL)
        worker.wait()
        archiver.wait()
        wait(lambda: not any(s.running for s in local.status()), "the servers to die")
        t["stop_kill9"] = time.perf_counter() - started
        aof = settings.run_dir.resolve() / "stack" / "redis" / "appendonly.aof"
        counts["aof_bytes"] = aof.stat().st_size

        started = time.perf_counter()
        local.up()
        t["start_stack"] = time.perf_counter() - started
        started = time.perf_counter()
        counts["mismatched_after_restart"] = mismatches(client, keys, first)
        t["state_check_first"] = time.perf_counter() - started

        started = time.perf_counter()
        worker, archiver = start_worker(settings, work / "worker.log"), start_archiver(settings, work / "archiver.log")
        t["replay_second"] = send(settings, second)
        t["second_applied_after_replay"] = wait(lambda: processed(client, keys) >= len(lines), "the stream")
        t["restart_to_caught_up"] = time.perf_counter() - started
        wait(lambda: read_archive(settings.archive_location).rows >= len(lines), "the archive")
        time.sleep(3 * settings.archive_flush_s)
        started = time.perf_counter()
        counts["mismatched_final"] = mismatches(client, keys, lines)
        t["state_check_all"] = time.perf_counter() - started
        stats = client.hgetall(keys.stream_stats())
        counts["processed"], counts["duplicates"] = int(stats["processed"]), int(stats["duplicates"])
    finally:
        stop_worker(worker)
        stop_worker(archiver)
    archived = read_archive(settings.archive_location)
    counts["archive_rows"], counts["archive_distinct"] = archived.rows, len(archived.events)
    started = time.perf_counter()
    archive_lines = from_archive(settings).lines
    t["batch_read_archive"] = time.perf_counter() - started
    started = time.perf_counter()
    file_lines = from_file(work / "shop", "case_study", None, None).lines
    t["batch_read_file"] = time.perf_counter() - started
    # Purchases only: product names are catalogue master data, which the archive does not hold.
    counts["archive_lines_equal_file_lines"] = int(archive_lines.drop(columns="product_name").equals(
        file_lines.drop(columns="product_name")))

    started = time.perf_counter()
    local.down()
    t["graceful_down"] = time.perf_counter() - started
    started = time.perf_counter()
    local.up()
    t["graceful_up"] = time.perf_counter() - started
    counts["mismatched_after_graceful_restart"] = mismatches(client, keys, lines)
    local.down()

    print(f"\n{'step':<40} {'seconds':>9}")
    for name, seconds in t.items():
        print(f"{name:<40} {seconds:>9.2f}")
    print(f"\n{'count':<40} {'value':>9}")
    for name, value in counts.items():
        print(f"{name:<40} {value:>9,}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": {"nproc": os.cpu_count(), "python": platform.python_version()},
                                    "seconds": t, "counts": counts}, indent=2))
    print(f"JSON: {args.out}")


if __name__ == "__main__":
    main()

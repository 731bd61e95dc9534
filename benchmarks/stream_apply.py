"""Redis's side of the stream: the worker's own writer (`StateWriter`) applying purchases in the worker's batch
size, driven directly (no Kafka), on the synthetic shop and on Online Retail when ../shared/data has it. Reports
events/s, Redis CPU per event (INFO cpu of the redis-server, so every call the writer makes counts) and script
calls per event. Prints a table and writes JSON.

    .venv/bin/python -m benchmarks.stream_apply [--batch 500] [--max-events 200000] [--out ...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import redis
import redis.asyncio as aioredis

from common.data import load_history, load_mapping
from common.data.synthetic import SyntheticSpec, write
from common.events import PurchaseEvent
from common.keys import KeyLayout
from producers.replay import to_events
from stack import LocalStack
from stack.scratch import stack_settings
from stream_app.state import StateWriter

UCI = Path(__file__).resolve().parents[2] / "shared/data/online_retail_uci/online_retail.csv.gz"


def redis_cpu_s(client: redis.Redis) -> float:
    cpu: dict[str, Any] = client.info("cpu")
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


def script_calls(client: redis.Redis) -> int:
    stats: dict[str, Any] = client.info("commandstats")
    return sum(int(v["calls"]) for k, v in stats.items() if k in ("cmdstat_evalsha", "cmdstat_eval"))


async def apply_all(url: str, prefix: str, events: list[PurchaseEvent], batch: int) -> float:
    client = aioredis.from_url(url)
    writer = StateWriter(client, KeyLayout(prefix))
    started, step = time.perf_counter(), max(1, len(events) // batch // 10)
    try:
        for n, start in enumerate(range(0, len(events), batch)):
            await writer.apply(events[start:start + batch])
            if n % step == 0:
                print(f"  {start + batch:,} of {len(events):,} events", flush=True)
        return time.perf_counter() - started
    finally:
        await client.aclose()


def measure(url: str, name: str, events: list[PurchaseEvent], batch: int) -> dict[str, Any]:
    client = redis.Redis.from_url(url)
    cpu, calls = redis_cpu_s(client), script_calls(client)
    wall = asyncio.run(apply_all(url, f"bench{name}", events, batch))
    cpu, calls = redis_cpu_s(client) - cpu, script_calls(client) - calls
    customers = len({e.customer_id for e in events})
    return {"data": name, "events": len(events), "customers": customers, "batch": batch,
            "events_per_s": round(len(events) / wall), "redis_cpu_us_per_event": round(cpu / len(events) * 1e6, 1),
            "script_calls_per_event": round(calls / len(events), 3), "seconds": round(wall, 1)}


def datasets(work: Path, max_events: int) -> dict[str, list[PurchaseEvent]]:
    write(SyntheticSpec(), work / "synthetic")
    found = {"synthetic": load_history(work / "synthetic", load_mapping("case_study"))}
    if UCI.exists():
        found["online_retail"] = load_history(UCI, load_mapping("uci"))
    return {name: list(to_events(loaded.lines))[:max_events] for name, loaded in found.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=500, help="events per apply (the worker batch size)")
    parser.add_argument("--max-events", type=int, default=200_000)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/stream_apply.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        settings = stack_settings(work / "stack")
        local = LocalStack(settings)
        local.up()
        try:
            runs = [measure(settings.redis_url, name, events, args.batch)
                    for name, events in datasets(work, args.max_events).items()]
        finally:
            local.down()
    print(f"\n{'data':<14}{'events':>9}{'customers':>10}{'events/s':>10}{'Redis CPU µs/event':>20}"
          f"{'script calls/event':>20}")
    for run in runs:
        print(f"{run['data']:<14}{run['events']:>9,}{run['customers']:>10,}{run['events_per_s']:>10,}"
              f"{run['redis_cpu_us_per_event']:>20}{run['script_calls_per_event']:>20}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"runs": runs, "nproc": os.cpu_count()}, indent=2))
    print(f"JSON: {args.out}")


if __name__ == "__main__":
    main()

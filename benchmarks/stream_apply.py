"""Redis's side of the stream: the worker's own writer (`StateWriter`) applying purchases in the worker's batch
size, driven directly (no Kafka), on the synthetic shop and on Online Retail when ../shared/data has it, on single
Redis or (--cluster) a local Redis Cluster of three nodes. Reports events/s, Redis CPU per event (INFO cpu of
every redis-server, so every call the writer makes counts) and script calls per event. Prints a table and writes
JSON.

    .venv/bin/python -m benchmarks.stream_apply [--cluster] [--batch 1000] [--max-events 200000] [--out ...]
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

from common.data import load_history, load_mapping
from common.data.synthetic import SyntheticSpec, write
from common.events import PurchaseEvent
from common.keys import KeyLayout
from common.redis_clients import async_client
from common.settings import Settings
from producers.replay import to_events
from stack import LocalStack
from stack.scratch import stack_settings
from stream_app.state import StateWriter

UCI = Path(__file__).resolve().parents[2] / "shared/data/online_retail_uci/online_retail.csv.gz"


def redis_cpu_s(nodes: list[redis.Redis]) -> float:
    total = 0.0
    for node in nodes:
        cpu: dict[str, Any] = node.info("cpu")
        total += float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])
    return total


def script_calls(nodes: list[redis.Redis]) -> int:
    total = 0
    for node in nodes:
        stats: dict[str, Any] = node.info("commandstats")
        total += sum(int(v["calls"]) for k, v in stats.items() if k in ("cmdstat_evalsha", "cmdstat_eval"))
    return total


async def apply_all(settings: Settings, prefix: str, events: list[PurchaseEvent], batch: int) -> float:
    client = async_client(settings)
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


def measure(settings: Settings, nodes: list[redis.Redis], name: str, events: list[PurchaseEvent], batch: int
            ) -> dict[str, Any]:
    cpu, calls = redis_cpu_s(nodes), script_calls(nodes)
    wall = asyncio.run(apply_all(settings, f"bench{name}", events, batch))
    cpu, calls = redis_cpu_s(nodes) - cpu, script_calls(nodes) - calls
    customers = len({e.customer_id for e in events})
    return {"data": name, "redis": "cluster" if settings.redis_cluster else "single", "events": len(events),
            "customers": customers, "batch": batch,
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
    parser.add_argument("--cluster", action="store_true", help="a local Redis Cluster of three nodes")
    parser.add_argument("--batch", type=int, default=1000, help="events per apply (the worker's batch size)")
    parser.add_argument("--max-events", type=int, default=200_000)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/stream_apply.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        settings = stack_settings(work / "stack", redis_cluster=args.cluster)
        local = LocalStack(settings)
        local.up()
        ports = local.cluster_ports() if args.cluster else [settings.redis_port]
        nodes = [redis.Redis(host=settings.redis_host, port=port) for port in ports]
        try:
            runs = [measure(settings, nodes, name, events, args.batch)
                    for name, events in datasets(work, args.max_events).items()]
        finally:
            local.down()
    print(f"\n{'data':<14}{'redis':>8}{'events':>9}{'customers':>10}{'events/s':>10}{'Redis CPU µs/event':>20}"
          f"{'script calls/event':>20}")
    for run in runs:
        print(f"{run['data']:<14}{run['redis']:>8}{run['events']:>9,}{run['customers']:>10,}{run['events_per_s']:>10,}"
              f"{run['redis_cpu_us_per_event']:>20}{run['script_calls_per_event']:>20}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"runs": runs, "nproc": os.cpu_count()}, indent=2))
    print(f"JSON: {args.out}")


if __name__ == "__main__":
    main()

"""Redis's side of the stream: the worker's own writers applying purchases (`StateWriter`), then A/B exposures
(`ExposureWriter`), in the worker's batch size, driven directly (no Kafka), on the synthetic shop and on Online
Retail when ../shared/data has it, on single Redis or (--cluster) a local Redis Cluster of three nodes. The
exposures are what the API's load logs: random customers of the history, each in the arm the API would give them,
ten random products of the catalogue each. Reports events/s, Redis CPU per event (INFO cpu of every redis-server,
so every call the writers make counts), the writer's own CPU per event (this process's: what the worker spends on
a batch beyond reading it), script calls per event and Redis commands per event (those the scripts run
included). Prints a table and writes JSON.

    .venv/bin/python -m benchmarks.stream_apply [--cluster] [--batch 1000] [--max-events 200000]
        [--exposures 100000] [--out ...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import tempfile
import time
import zlib
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import redis

from common.data import load_history, load_mapping
from common.data.synthetic import SyntheticSpec, write
from common.events import ExposureEvent, PurchaseEvent
from common.keys import KeyLayout
from common.redis_clients import async_client
from common.settings import Settings
from experiments.plan import DEFAULT_ARMS
from producers.replay import to_events
from stack import LocalStack
from stack.scratch import stack_settings
from stream_app.exposures import ExposureWriter
from stream_app.state import StateWriter

UCI = Path(__file__).resolve().parents[2] / "shared/data/online_retail_uci/online_retail.csv.gz"


def redis_cpu_s(nodes: list[redis.Redis]) -> float:
    total = 0.0
    for node in nodes:
        cpu: dict[str, Any] = node.info("cpu")
        total += float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])
    return total


def calls_made(nodes: list[redis.Redis]) -> tuple[int, int]:
    """Script calls and all commands (those scripts run included) the nodes served so far, INFO itself left out."""
    scripts = commands = 0
    for node in nodes:
        stats: dict[str, Any] = node.info("commandstats")
        scripts += sum(int(v["calls"]) for k, v in stats.items() if k in ("cmdstat_evalsha", "cmdstat_eval"))
        commands += sum(int(v["calls"]) for k, v in stats.items() if k not in ("cmdstat_info",))
    return scripts, commands


def exposures_of(events: Sequence[PurchaseEvent], n: int, seed: int = 7) -> list[ExposureEvent]:
    """n exposures after the history's end, one a millisecond: random customers of it, each always in the same
    arm (a hash of their id, as the API keeps a customer in one arm; not the API's own hash), ten random products
    of its catalogue."""
    rng = random.Random(seed)
    customers = sorted({e.customer_id for e in events})
    products = sorted({e.product_id for e in events})
    end = max(e.event_time for e in events)
    return [ExposureEvent(request_id=f"r{i}", customer_id=customer, experiment="bench",
                          group=DEFAULT_ARMS[zlib.crc32(customer.encode()) % len(DEFAULT_ARMS)], strategy="model",
                          model_version="v1", product_ids=rng.sample(products, min(10, len(products))),
                          event_time=end + timedelta(milliseconds=i))
            for i, customer in enumerate(rng.choices(customers, k=n))]


async def apply_all(settings: Settings, prefix: str, kind: str, events: Sequence[Any], batch: int) -> float:
    client = async_client(settings)
    keys = KeyLayout(prefix)
    writer = StateWriter(client, keys) if kind == "purchases" else ExposureWriter(client, keys)
    started, step = time.perf_counter(), max(1, len(events) // batch // 10)
    try:
        for n, start in enumerate(range(0, len(events), batch)):
            await writer.apply(events[start:start + batch])
            if n % step == 0:
                print(f"  {start + batch:,} of {len(events):,} {kind}", flush=True)
        return time.perf_counter() - started
    finally:
        await client.aclose()


def measure(settings: Settings, nodes: list[redis.Redis], name: str, kind: str, events: Sequence[Any], batch: int
            ) -> dict[str, Any]:
    cpu, (scripts, commands), own = redis_cpu_s(nodes), calls_made(nodes), time.process_time()
    wall = asyncio.run(apply_all(settings, f"bench{name}", kind, events, batch))
    cpu, own = redis_cpu_s(nodes) - cpu, time.process_time() - own
    scripts_after, commands_after = calls_made(nodes)
    customers = len({e.customer_id for e in events})
    return {"data": name, "kind": kind, "redis": "cluster" if settings.redis_cluster else "single",
            "events": len(events), "customers": customers, "batch": batch,
            "events_per_s": round(len(events) / wall), "redis_cpu_us_per_event": round(cpu / len(events) * 1e6, 1),
            "writer_cpu_us_per_event": round(own / len(events) * 1e6, 1),
            "script_calls_per_event": round((scripts_after - scripts) / len(events), 3),
            "commands_per_event": round((commands_after - commands) / len(events), 2), "seconds": round(wall, 1)}


def measure_both(settings: Settings, nodes: list[redis.Redis], name: str, events: list[PurchaseEvent], batch: int,
                 exposures: int) -> list[dict[str, Any]]:
    """The purchases, then exposures over the same customers (their purchase logs are there to attribute to)."""
    runs = [measure(settings, nodes, name, "purchases", events, batch)]
    if exposures:
        runs.append(measure(settings, nodes, name, "exposures", exposures_of(events, exposures), batch))
    return runs


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
    parser.add_argument("--exposures", type=int, default=100_000, help="exposures after the purchases (0: none)")
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
            runs = [run for name, events in datasets(work, args.max_events).items()
                    for run in measure_both(settings, nodes, name, events, args.batch, args.exposures)]
        finally:
            local.down()
    print(f"\n{'data':<14}{'events':<10}{'redis':>8}{'count':>9}{'customers':>10}{'per s':>9}"
          f"{'Redis CPU µs/event':>20}{'writer CPU µs/event':>21}{'script calls/event':>20}{'commands/event':>16}")
    for run in runs:
        print(f"{run['data']:<14}{run['kind']:<10}{run['redis']:>8}{run['events']:>9,}{run['customers']:>10,}"
              f"{run['events_per_s']:>9,}{run['redis_cpu_us_per_event']:>20}{run['writer_cpu_us_per_event']:>21}"
              f"{run['script_calls_per_event']:>20}{run['commands_per_event']:>16}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"runs": runs, "nproc": os.cpu_count()}, indent=2))
    print(f"JSON: {args.out}")


if __name__ == "__main__":
    main()

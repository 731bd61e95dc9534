"""Redis memory per customer, measured from the real keys: the stream state of a synthetic shop (every purchase
applied by the stream's own script, the profiles and catalogue by the master-data writer), a published model, and
one simulated visit per customer, on single Redis or (--cluster) a local Redis Cluster of three nodes. Prints a
table (bytes per customer by key family, and the total extrapolated to 1M customers), the growth of Redis's
used_memory per customer over all nodes (which also holds what MEMORY USAGE leaves out, such as a cluster's index
of keys per slot), and writes JSON.

    .venv/bin/python -m benchmarks.redis_footprint [--cluster] [--customers 5000] [--lines 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from collections import defaultdict
from datetime import timedelta
from pathlib import Path

import redis

from batch.evaluation.result import EvaluationOptions
from batch.pipeline import run
from batch.stages import Stages
from common.assignment import group_of
from common.data import load_history, load_mapping
from common.data.synthetic import SyntheticSpec, write
from common.events import ExposureEvent
from common.keys import KeyLayout
from common.redis_clients import async_client, sync_client
from common.settings import Settings
from producers.master_data import product_events, profile_events
from producers.replay import to_events
from stack import LocalStack
from stack.scratch import stack_settings
from stream_app.exposures import ExposureWriter
from stream_app.master_data import MasterDataWriter
from stream_app.state import StateWriter

PREFIX = "footprint"


async def fill(settings: Settings, folder: Path) -> int:
    loaded = load_history(folder, load_mapping("case_study"))
    lines = loaded.lines
    client = async_client(settings)
    keys = KeyLayout(PREFIX)
    writer = StateWriter(client, keys)
    exposures = ExposureWriter(client, keys)
    last = lines.drop_duplicates("customer_id", keep="last")
    await exposures.apply([
        ExposureEvent(request_id=f"v{i}", customer_id=str(c), experiment=settings.ab_experiment, strategy="model",
                      model_version="v", group=group_of(settings.ab_salt, str(c), 50),
                      product_ids=[str(p) for p in lines["product_id"].iloc[i * 7 % len(lines):][:10]],
                      event_time=t.tz_localize("UTC").to_pydatetime() - timedelta(hours=1))
        for i, (c, t) in enumerate(zip(last["customer_id"], last["event_time"], strict=True))
    ])
    events = list(to_events(lines))
    for start in range(0, len(events), 1000):
        await writer.apply(events[start:start + 1000])
    master = MasterDataWriter(client, keys)
    invalid: dict[str, int] = {}
    profiles = [(p.customer_id, p) for p in profile_events(loaded.customers, invalid)]
    for start in range(0, len(profiles), 1000):
        await master.apply_profiles(profiles[start:start + 1000])
    assert loaded.products is not None
    await master.apply_products([(p.product_id, p) for p in product_events(loaded.products, invalid)])
    await client.aclose()
    return int(lines["customer_id"].nunique())


def family(key: str) -> str:
    """'footprint:cust:{<id>}:rfm' -> 'cust:*:rfm'; model keys by their part."""
    parts = key.split(":")[1:]
    if parts[0] == "cust":
        return f"cust:*:{parts[2]}"
    if parts[0] == "ab" and len(parts) > 3 and parts[1] == "cust":  # one purchase log per customer
        return f"ab:cust:*:{parts[3]}"
    if parts[0] == "ab" and len(parts) > 4 and parts[2] == "cust":
        return f"ab:*:cust:*:{parts[4]}"
    if parts[0] == "model" and len(parts) > 2:
        return f"model:*:{parts[2]}"
    if parts[0] == "prod" and len(parts) > 2 and parts[1] == "pop" and parts[2] == "day":
        return "prod:pop:day:*"
    return ":".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cluster", action="store_true", help="a local Redis Cluster of three nodes")
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/redis_footprint.json"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-footprint-"))
    settings = stack_settings(work / "run", key_prefix=PREFIX, redis_cluster=args.cluster)
    local = LocalStack(settings)
    local.up()
    ports = local.cluster_ports() if args.cluster else [settings.redis_port]
    nodes = [redis.Redis(host=settings.redis_host, port=port, decode_responses=True) for port in ports]
    try:
        write(SyntheticSpec(customers=args.customers, lines=args.lines), work / "data")
        before = sum(int(node.info("memory")["used_memory"]) for node in nodes)
        customers = asyncio.run(fill(settings, work / "data"))
        run(load_history(work / "data", load_mapping("case_study")), EvaluationOptions(case_study=False),
            work / "artifacts", sync_client(settings), KeyLayout(PREFIX), Stages(), lambda _m: None)
        sizes: dict[str, int] = defaultdict(int)
        counts: dict[str, int] = defaultdict(int)
        for node in nodes:
            for key in node.scan_iter(match=f"{PREFIX}:*", count=2000):
                sizes[family(key)] += int(node.memory_usage(key, samples=0) or 0)
                counts[family(key)] += 1
        used = sum(int(node.info("memory")["used_memory"]) for node in nodes) - before
    finally:
        local.down()
    total = sum(sizes.values())
    print(f"{customers:,} customers, {args.lines:,} lines; keys measured with MEMORY USAGE (all samples)\n")
    print(f"{'key family':<32} {'keys':>8} {'bytes':>12} {'bytes/customer':>15}")
    for name in sorted(sizes, key=lambda n: -sizes[n]):
        print(f"{name:<32} {counts[name]:>8,} {sizes[name]:>12,} {sizes[name] / customers:>15,.0f}")
    per_customer = total / customers
    print(f"{'total':<32} {sum(counts.values()):>8,} {total:>12,} {per_customer:>15,.0f}")
    mode = "3-node cluster" if args.cluster else "single Redis"
    print(f"\nredis used_memory grew {used:,} bytes ({used / customers:,.0f} per customer, {mode}); extrapolated to "
          f"1M customers with the same purchase history per customer: {per_customer * 1e6 / 2**30:.1f} GiB of keys")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"customers": customers, "lines": args.lines, "cluster": args.cluster,
                                    "families": sizes, "counts": counts, "bytes_per_customer": per_customer,
                                    "used_memory_growth": used}, indent=2))
    print(f"JSON: {args.out}")


if __name__ == "__main__":
    main()

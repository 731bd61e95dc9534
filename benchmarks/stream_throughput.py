"""Stream throughput on the local stack: a raw aiokafka consumer-group loop vs the Faust worker (one, or
--workers N in one consumer group), same Redis updates (the same writer), same 200k events; then event-to-Redis
freshness at a steady 1,000 events/s. On single Redis or (--cluster) a local Redis Cluster of three nodes. Prints
a table and writes JSON.

    .venv/bin/python -m benchmarks.stream_throughput [--events 200000] [--workers 1] [--cluster] [--out ...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer

from common.data import load_history, load_mapping
from common.data.synthetic import SyntheticSpec, write
from common.events import PurchaseEvent, parse_event
from common.keys import KeyLayout
from common.redis_clients import async_client, sync_client
from common.settings import Settings
from producers.replay import Pace, replay, select, to_events
from stack import LocalStack
from stack.scratch import stack_settings, start_worker
from stream_app.state import StateWriter

POLL_S = 0.02


async def raw_loop(settings: Settings, total: int) -> dict[str, float]:
    """The floor: getmany(max_records=1000) + one script call per batch."""
    client = async_client(settings)
    writer = StateWriter(client, KeyLayout(settings.key_prefix))
    started = time.perf_counter()
    consumer = AIOKafkaConsumer(
        settings.topic_purchases, bootstrap_servers=settings.bootstrap_servers, group_id="bench-raw",
        auto_offset_reset="earliest", enable_auto_commit=False, session_timeout_ms=10_000,
        heartbeat_interval_ms=1_000, max_poll_records=1000,
    )
    await consumer.start()
    seen, first = 0, 0.0
    try:
        while seen < total:
            batches = await consumer.getmany(timeout_ms=500, max_records=1000)
            for records in batches.values():
                first = first or time.perf_counter()
                parsed = [parse_event(PurchaseEvent, r.value, 4096) for r in records]
                events = [e for e in parsed if isinstance(e, PurchaseEvent)]
                await writer.apply(events)
                seen += len(records)
            if batches:
                await consumer.commit()
    finally:
        await consumer.stop()
        await client.aclose()
    end = time.perf_counter()
    return {"events": seen, "first_to_last_s": end - first, "with_startup_s": end - started}


def faust_run(settings: Settings, total: int, log: Path, workers: int
              ) -> tuple[list[subprocess.Popen[bytes]], dict[str, float]]:
    client = sync_client(settings, decode_responses=True)
    stats_key = KeyLayout(settings.key_prefix).stream_stats()
    started = time.perf_counter()
    running = [start_worker(settings, log.with_name(f"{log.stem}-{i}.log")) for i in range(workers)]
    first = cpu_at_first = 0.0
    processed = 0
    while processed < total:
        processed = int(client.hget(stats_key, "processed") or 0)
        if processed and not first:
            first, cpu_at_first = time.perf_counter(), sum(cpu_seconds(w.pid) for w in running)
        if any(w.poll() is not None for w in running):
            raise RuntimeError(f"a worker exited; see {log.parent}")
        time.sleep(POLL_S)
    end = time.perf_counter()
    client.close()
    busy = (sum(cpu_seconds(w.pid) for w in running) - cpu_at_first) / (end - first) / workers
    return running, {"events": processed, "first_to_last_s": end - first, "with_startup_s": end - started,
                     "cpu_busy": busy, "peak_rss_mib": max(peak_rss_mib(w.pid) for w in running)}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (fields 14 and 15 of /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
    return kib / 1024


def freshness(settings: Settings, events: list, rate: float) -> dict[str, float]:  # type: ignore[type-arg]
    client = sync_client(settings, decode_responses=True)
    keys = KeyLayout(settings.key_prefix)
    client.delete(keys.stream_freshness())
    before = int(client.hget(keys.stream_stats(), "processed") or 0)
    asyncio.run(replay(settings, iter(events), Pace(max_rate=rate)))
    deadline = time.monotonic() + 30
    while int(client.hget(keys.stream_stats(), "processed") or 0) < before + len(events):
        if time.monotonic() > deadline:
            raise RuntimeError("steady-rate events were not all processed")
        time.sleep(0.1)
    ages = sorted(float(a) for a in client.lrange(keys.stream_freshness(), 0, -1))
    client.close()
    return {
        "events": len(ages),
        "rate": rate,
        "p50_ms": statistics.median(ages),
        "p99_ms": ages[min(len(ages) - 1, int(0.99 * len(ages)))],
        "max_ms": ages[-1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--steady-events", type=int, default=15_000)
    parser.add_argument("--workers", type=int, default=1, help="Faust workers in the consumer group")
    parser.add_argument("--cluster", action="store_true", help="a local Redis Cluster of three nodes")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/stream_throughput.json"))
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-stream-"))
    settings = stack_settings(work / "run", redis_cluster=args.cluster)
    local = LocalStack(settings)
    local.up()
    workers: list[subprocess.Popen[bytes]] = []
    try:
        print(f"generating ~{args.events + args.steady_events:,} events ...", flush=True)
        write(SyntheticSpec(customers=10_000, products=1000, lines=int((args.events + args.steady_events) * 1.02)),
              work / "data")
        lines = load_history(work / "data", load_mapping("case_study")).lines
        main_events = list(to_events(select(lines, limit=args.events)))
        steady_events = list(to_events(lines.iloc[args.events: args.events + args.steady_events]))

        t0 = time.perf_counter()
        asyncio.run(replay(settings, iter(main_events), Pace()))
        produce_s = time.perf_counter() - t0
        print(f"produced {len(main_events):,} in {produce_s:.1f}s", flush=True)

        raw_settings = settings.model_copy(update={"key_prefix": "benchraw"})
        raw = asyncio.run(raw_loop(raw_settings, len(main_events)))
        print(f"raw loop: {raw}", flush=True)
        faust_settings = settings.model_copy(update={"key_prefix": "benchfaust", "stream_app_id": "bench-faust"})
        workers, faust = faust_run(faust_settings, len(main_events), work / "worker.log", args.workers)
        print(f"faust: {faust}", flush=True)
        fresh = freshness(faust_settings, steady_events, rate=1000)
    finally:
        for worker in workers:
            worker.terminate()
            worker.wait(timeout=30)
        local.down()

    raw_eps = raw["events"] / raw["first_to_last_s"]
    faust_eps = faust["events"] / faust["first_to_last_s"]
    result: dict[str, Any] = {
        "redis": "cluster" if args.cluster else "single", "workers": args.workers, "events": len(main_events),
        "produce_eps": len(main_events) / produce_s,
        "raw": raw | {"eps": raw_eps, "eps_with_startup": raw["events"] / raw["with_startup_s"]},
        "faust": faust | {"eps": faust_eps, "eps_with_startup": faust["events"] / faust["with_startup_s"]},
        "faust_over_raw": faust_eps / raw_eps,
        "freshness_at_1000_eps": fresh,
        "targets": {"faust_eps": 8000, "faust_over_raw": 0.3, "freshness_p99_ms": 500},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print()
    print(f"{'pipeline':<34} {'events/s':>10} {'with start-up':>14} {'seconds':>8}")
    mode = f"{'3-node cluster' if args.cluster else 'single Redis'}, {args.workers} Faust worker(s)"
    print(mode)
    rows = (("raw aiokafka getmany + Lua/batch", result["raw"]), ("Faust worker take_events + Lua", result["faust"]))
    for name, row in rows:
        print(f"{name:<34} {row['eps']:>10,.0f} {row['eps_with_startup']:>14,.0f} {row['first_to_last_s']:>8.2f}")
    print(f"Faust / raw: {result['faust_over_raw']:.2f}x   (targets: Faust >= 8,000 ev/s and >= 0.3x raw); "
          f"worker CPU busy {result['faust']['cpu_busy']:.0%}, peak RSS {result['faust']['peak_rss_mib']:.0f} MiB")
    print(f"freshness at 1,000 ev/s over {fresh['events']:,} events: p50 {fresh['p50_ms']:.0f} ms, "
          f"p99 {fresh['p99_ms']:.0f} ms, max {fresh['max_ms']:.0f} ms   (target p99 < 500 ms)")
    print(f"JSON: {args.out}")


if __name__ == "__main__":
    main()

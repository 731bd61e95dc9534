"""The stream worker catching up on a backlog of exposures: its peak memory and rate. On a stack of its own per
shape: N exposures over C customers are produced with the worker stopped, either as the API sends them (records of
many, `api.adapters.exposures.ExposurePublisher`) or one per record (what older APIs sent); then the worker starts
and applies them. Reports the worker's peak RSS (the kernel's VmHWM, read before the worker stops) and exposures/s
from its start to the last one applied. Prints a table and writes JSON.

    .venv/bin/python -m benchmarks.worker_backlog [--exposures 200000] [--customers 20000]
        [--shapes many,one] [--out benchmarks/results/worker_backlog.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import random
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
from aiokafka import AIOKafkaProducer

from api.adapters.exposures import Exposure, ExposurePublisher
from common.keys import KeyLayout
from common.settings import Settings
from stack import LocalStack
from stack.scratch import stack_settings, start_worker, stop_worker

EXPERIMENT, ARMS = "backlog", ("control", "treatment")


def exposures_of(n: int, customers: int, seed: int = 7) -> list[Exposure]:
    rng = random.Random(seed)
    ids = [uuid.UUID(int=rng.getrandbits(128)).hex for _ in range(customers)]
    now = datetime.now(UTC)
    return [Exposure(uuid.UUID(int=rng.getrandbits(128)).hex, rng.choice(ids), EXPERIMENT, rng.choice(ARMS),
                     "model", "v1", [str(rng.randint(1, 3000)) for _ in range(10)], now, None) for _ in range(n)]


async def produce_as_the_api(settings: Settings, exposures: list[Exposure]) -> None:
    publisher = ExposurePublisher(settings.bootstrap_servers, settings.topic_exposures, max_queued=len(exposures) + 1)
    await publisher.start()
    try:
        if not await publisher.connected(30):
            raise RuntimeError("the broker did not answer")
        for n, exposure in enumerate(exposures, 1):
            publisher.publish(exposure)
            if n % 2000 == 0:
                await asyncio.sleep(0.03)  # flushes as a busy API's sender makes them
        await publisher.flush()
    finally:
        await publisher.stop()


async def produce_one_per_record(settings: Settings, exposures: list[Exposure]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, linger_ms=5, acks=1)
    await producer.start()
    try:
        sent = [await producer.send(settings.topic_exposures, e.to_bytes(), key=e.customer_id.encode())
                for e in exposures]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


def applied(client: redis.Redis, keys: KeyLayout) -> int:
    return sum(int(client.hget(keys.ab_group_counters(EXPERIMENT, arm), "exposures") or 0) for arm in ARMS)


def peak_rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc")


def catch_up(shape: str, exposures: list[Exposure], customers: int, timeout_s: float) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix=f"backlog-{shape}-"))
    settings = stack_settings(work / "run", key_prefix="backlog")
    stack = LocalStack(settings)
    stack.up()
    worker = None
    try:
        produce = produce_as_the_api if shape == "many" else produce_one_per_record
        asyncio.run(produce(settings, exposures))
        print(f"{shape}: {len(exposures):,} exposures produced; starting the worker", flush=True)
        client, keys = redis.Redis.from_url(settings.redis_url), KeyLayout(settings.key_prefix)
        worker = start_worker(settings, work / "worker.log")
        started = time.perf_counter()
        done, shown = 0, time.perf_counter()
        while done < len(exposures):
            if time.perf_counter() - started > timeout_s or worker.poll() is not None:
                raise RuntimeError(f"{shape}: {done:,} of {len(exposures):,} applied (worker log: {work})")
            time.sleep(0.2)
            done = applied(client, keys)
            if time.perf_counter() - shown > 10:
                print(f"  {done:,} of {len(exposures):,} applied", flush=True)
                shown = time.perf_counter()
        seconds = time.perf_counter() - started
        return {"shape": shape, "exposures": len(exposures), "customers": customers,
                "seconds_from_worker_start": round(seconds, 1),
                "exposures_per_s": round(len(exposures) / seconds), "peak_rss_mb": round(
                    peak_rss_bytes(worker.pid) / 2**20)}
    finally:
        if worker is not None:
            stop_worker(worker)
        stack.down()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exposures", type=int, default=200_000)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--shapes", default="many,one", help="many (as the API sends), one (one per record)")
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/worker_backlog.json"))
    args = parser.parse_args()
    exposures = exposures_of(args.exposures, args.customers)
    rows = [catch_up(shape, exposures, args.customers, args.timeout) for shape in args.shapes.split(",")]
    print("\n| records | exposures | customers | exposures/s from the worker's start | worker peak RSS |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['shape']} | {r['exposures']:,} | {r['customers']:,} | {r['exposures_per_s']:,} | "
              f"{r['peak_rss_mb']:,} MB |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": platform.platform(), "rows": rows}, indent=2))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()

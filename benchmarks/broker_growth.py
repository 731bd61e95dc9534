"""The local broker's CPU per record as a topic grows. On a stack of its own per case, records are produced at a
steady rate in windows of N (4 partitions), with a consumer reading at the tail (with the stream worker's fetch
wait, committing at Faust's default interval) or with none; after each window the broker's CPU time per record
produced in it is read from /proc. Tansu's `memory://` storage (the local stack's) was measured to cost more per
record the longer the topic is, but only while a consumer fetches: `benchmarks/api_latency.py --rounds 3
--with-worker` saw the broker's CPU per request rise 1.4x to 2.8x from the first round to the third. Prints a
table and writes JSON.

    .venv/bin/python -m benchmarks.broker_growth [--windows 8] [--records 5000] [--bytes 2000]
        [--out benchmarks/results/broker_growth.json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from benchmarks.serving import cpu_seconds
from stack import LocalStack
from stack.scratch import stack_settings

TOPIC, PARTITIONS = "growth", 4
COMMIT_INTERVAL_S = 2.8  # Faust's broker_commit_interval, which the stream worker keeps
CASES = ("consumer at the tail", "no consumer")


async def windows(bootstrap: str, broker_pid: int, args: argparse.Namespace, consume: bool) -> list[dict[str, Any]]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    await producer.send_and_wait(TOPIC, b"{}")  # the topic exists (auto-created) before the consumer joins
    read = 0

    async def tail(consumer: AIOKafkaConsumer) -> None:
        nonlocal read
        committed = time.monotonic()
        try:
            while True:
                fetched = await consumer.getmany(timeout_ms=200)
                read += sum(len(records) for records in fetched.values())
                if time.monotonic() - committed >= COMMIT_INTERVAL_S:
                    await consumer.commit()
                    committed = time.monotonic()
        finally:
            await consumer.stop()

    reader = None
    if consume:  # the stream worker's fetch wait (RECSYS_STREAM_FETCH_MAX_WAIT_MS)
        consumer = AIOKafkaConsumer(TOPIC, bootstrap_servers=bootstrap, group_id="growth",
                                    auto_offset_reset="earliest", fetch_max_wait_ms=100)
        await consumer.start()
        reader = asyncio.create_task(tail(consumer))
    value = os.urandom(args.bytes // 2).hex().encode()
    rows = []
    try:
        for window in range(args.windows):
            cpu_before, started = cpu_seconds(broker_pid), time.perf_counter()
            for i in range(args.records):
                await producer.send(TOPIC, value, partition=i % PARTITIONS)
                if i % 20 == 19:
                    await asyncio.sleep(0.002)  # a steady stream, not one burst
            await producer.flush()
            while reader is not None and read < (window + 1) * args.records + 1:
                if reader.done():
                    reader.result()  # the consumer failed: its error, not a wait for ever
                    raise RuntimeError("the consumer stopped")
                await asyncio.sleep(0.05)
            rows.append({"topic_records": (window + 1) * args.records,
                         "broker_us_per_record": 1e6 * (cpu_seconds(broker_pid) - cpu_before) / args.records,
                         "records_per_s": args.records / (time.perf_counter() - started)})
            print(f"  {'read' if consume else 'unread'}: {rows[-1]['topic_records']:,} records, broker "
                  f"{rows[-1]['broker_us_per_record']:.0f} us/record", flush=True)
    finally:
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        await producer.stop()
    return rows


def run_case(consume: bool, args: argparse.Namespace) -> list[dict[str, Any]]:
    work = Path(tempfile.mkdtemp(prefix="bench-broker-growth-"))
    settings = stack_settings(work / "run", key_prefix="growth")
    local = LocalStack(settings)
    local.up()
    try:
        broker_pid = next(s.pid for s in local.status() if s.name == "broker" and s.pid is not None)
        return asyncio.run(windows(settings.bootstrap_servers, broker_pid, args, consume))
    finally:
        local.down()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--windows", type=int, default=8)
    parser.add_argument("--records", type=int, default=5000, help="records produced per window")
    parser.add_argument("--bytes", type=int, default=2000, help="bytes per record")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/broker_growth.json"))
    args = parser.parse_args()
    results = {case: run_case(case == CASES[0], args) for case in CASES}
    print(f"\n| records in the topic | broker us/record, {CASES[0]} | broker us/record, {CASES[1]} |")
    print("|---:|---:|---:|")
    for read, unread in zip(results[CASES[0]], results[CASES[1]], strict=True):
        print(f"| {read['topic_records']:,} | {read['broker_us_per_record']:.0f} | "
              f"{unread['broker_us_per_record']:.0f} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": platform.platform(), "records_per_window": args.records,
                                    "bytes_per_record": args.bytes, "cases": results}, indent=2))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()

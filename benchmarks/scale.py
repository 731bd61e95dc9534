"""The system at shop scale: a synthetic shop of 200k customers x 100k products x 10M purchase lines with a long
tail (Zipf popularity over the catalogue), on a throwaway local stack.

Measured, in this order:
1. `recsys batch run --data` as a user runs it (load, EDA, evaluation, refit, segments, publish to Redis):
   seconds per stage and peak RSS (targets < 15 min, < 8 GiB), twice: a night that evaluates (`--evaluate`; by
   default one night in RECSYS_BATCH_EVALUATE_EVERY_DAYS), then the next night, which refits with its settings;
2. the Spark engine on the same file (`recsys batch run --engine spark`), or "not available";
3. stream backfill: the history replayed into a 4-partition topic, then consumed from the start by 1 and by 2
   workers (events/s). The local broker keeps its log in memory: its RSS is watched while producing, and the
   replay stops at `--broker-rss-gib` (what it held is then the backfill measured);
4. Redis memory per customer: what the 1-worker stream state adds (and the published model, left by a batch run
   of this or an earlier invocation: the stack keeps Redis's append-only file);
5. `/recommend` p50 / p99 at c=32 (wrk, one API worker) with every customer published (whenever a model is).

Prints a table and writes JSON. The shop is generated once into `--work` and reused.

    .venv/bin/python -m benchmarks.scale [--lines 10000000 --customers 200000 --products 100000]
        [--work /tmp/recsys-scale] [--stream-events N] [--skip-batch] [--skip-stream] [--skip-spark]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd
import redis

from benchmarks.api_latency import WRK_SCRIPT, wrk
from benchmarks.stream_throughput import cpu_seconds, peak_rss_mib
from common.data import load_history, load_mapping
from common.data.synthetic import SyntheticSpec, write
from common.events import PurchaseEvent
from common.keys import KeyLayout
from common.settings import Settings
from producers.replay import Pace, replay, to_events
from stack import LocalStack
from stack.scratch import free_port, settings_env, stack_settings, start_worker, stop_worker
from stack.system import wait_http

RECSYS = str(Path(sys.executable).parent / "recsys")
STAGE_LINE = re.compile(r"^(?P<name>[^\n]+?): (?P<s>[\d.]+) s, peak RSS (?P<rss>\d+) MiB$", re.MULTILINE)
TARGET_BATCH_S = 15 * 60
TARGET_BATCH_RSS_MIB = 8 * 1024
WATCH_EVERY = 50_000  # events between looks at the broker's RSS
POLL_S = 0.5
WRK_IDS = 20_000  # customer ids the load generator draws from (a Lua table; all 200k would be a 7 MB script)


def say(message: str) -> None:
    print(message, flush=True)


def shop(spec: SyntheticSpec, work: Path) -> Path:
    """The generated shop, reused when the folder holds the same spec."""
    folder = work / "data"
    marker = folder / "spec.json"
    wanted = json.dumps(asdict(spec), default=str)
    if not (marker.exists() and marker.read_text() == wanted):
        say(f"generating {spec.lines:,} lines, {spec.customers:,} customers x {spec.products:,} products ...")
        started = time.perf_counter()
        write(spec, folder)
        marker.write_text(wanted)
        say(f"  generated in {time.perf_counter() - started:.0f} s")
    return folder


def timed_recsys(args: list[str], env: dict[str, str], log: Path) -> dict[str, Any]:
    """Run a `recsys` command, echoing its output to a log; wall seconds, peak RSS (from wait4), exit code."""
    started = time.perf_counter()
    with log.open("w") as out:
        child = subprocess.Popen([RECSYS, *args], env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    return {"seconds": time.perf_counter() - started, "peak_rss_mib": usage.ru_maxrss / 1024,
            "exit_code": child.returncode, "output": log.read_text()}


def batch_run(settings: Settings, data: Path, work: Path, night: str) -> dict[str, Any]:
    """One `batch run` from the file: `night` "evaluate" forces the evaluation, "refit" reuses the newest one."""
    env = settings_env(settings) | {"RECSYS_ARTIFACTS_DIR": str(work / "artifacts")}
    log = work / f"batch-{night}.log"
    say(f"batch run from file ({night}) ...")
    result = timed_recsys(["batch", "run", "--data", str(data), "--preset", "case_study",
                           *(["--evaluate"] if night == "evaluate" else [])], env, log)
    output = result.pop("output")
    if result["exit_code"] != 0:
        raise RuntimeError(f"batch run failed; see {log}:\n{output[-2000:]}")
    stages = [{"name": m["name"].strip(), "seconds": float(m["s"]), "peak_rss_mib": float(m["rss"])}
              for m in STAGE_LINE.finditer(output)]
    plan = re.search(r"^memory plan: .*$", output, re.MULTILINE)
    coverage = re.findall(r"^\S+ covers .*$", output, re.MULTILINE)
    return result | {"stages": stages, "memory_plan": plan.group(0) if plan else None, "coverage": coverage}


def spark_run(settings: Settings, data: Path, work: Path) -> dict[str, Any]:
    """The same file through `recsys batch run --engine spark --no-publish` (RECSYS_SPARK_MASTER, local[*] by
    default; the publish is the same driver code as the batch above). Stage times as the CLI printed them; the
    peak RSS is the Python driver's (wait4), the Spark JVM's is the one the CLI reports (VmHWM; in local mode the
    executors run in it)."""
    if importlib.util.find_spec("pyspark") is None:
        return {"available": False}
    env = settings_env(settings) | {"RECSYS_ARTIFACTS_DIR": str(work / "artifacts-spark"),
                                    "RECSYS_RUN_DIR": str(work / "run-spark")}
    say("batch run with the Spark engine ...")
    result = timed_recsys(["batch", "run", "--engine", "spark", "--data", str(data), "--preset", "case_study",
                           "--no-publish"], env, work / "spark.log")
    output = result.pop("output")
    if result["exit_code"] != 0:
        raise RuntimeError(f"batch run --engine spark failed; see {work / 'spark.log'}:\n{output[-2000:]}")
    stages = [{"name": m["name"].strip(), "seconds": float(m["s"]), "peak_rss_mib": float(m["rss"])}
              for m in STAGE_LINE.finditer(output)]
    jvm = re.search(r"driver JVM peak RSS (\d+) MiB", output)
    return {"available": True} | result | {"stages": stages, "jvm_peak_rss_mib": float(jvm.group(1)) if jvm else None}


def rss_mib(pid: int | None) -> float:
    if pid is None:
        return 0.0
    status = Path(f"/proc/{pid}/status").read_text()
    return next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")) / 1024


def produce(settings: Settings, lines: pd.DataFrame, limit: int | None, broker_pid: int | None,
            max_broker_mib: float) -> dict[str, Any]:
    """Replay the history into the topic as fast as the producer goes; stop early if the broker grows past the
    limit (its log lives in memory)."""
    lines = lines if limit is None else lines.iloc[:limit]
    watch: dict[str, Any] = {"events": 0, "broker_peak_mib": 0.0, "stopped_by_broker_memory": False}

    def watched(events: Iterator[PurchaseEvent]) -> Iterator[PurchaseEvent]:
        for event in events:
            if watch["events"] % WATCH_EVERY == 0:
                watch["broker_peak_mib"] = max(watch["broker_peak_mib"], rss_mib(broker_pid))
                if watch["broker_peak_mib"] > max_broker_mib:
                    watch["stopped_by_broker_memory"] = True
                    return
                if watch["events"] % (10 * WATCH_EVERY) == 0:
                    say(f"  produced {watch['events']:,}; broker RSS {watch['broker_peak_mib']:,.0f} MiB")
            watch["events"] += 1
            yield event

    say(f"producing up to {len(lines):,} events ...")
    started = time.perf_counter()
    asyncio.run(replay(settings, watched(to_events(lines)), Pace()))
    seconds = time.perf_counter() - started
    watch["broker_peak_mib"] = max(watch["broker_peak_mib"], rss_mib(broker_pid))
    customers = int(lines.iloc[:watch["events"]]["customer_id"].nunique())
    return watch | {"seconds": seconds, "eps": watch["events"] / seconds, "customers": customers}


def backfill(settings: Settings, total: int, workers: int, work: Path) -> dict[str, Any]:
    """Workers in one consumer group read the topic from the start; events/s from the first write to the last."""
    client = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    stats = KeyLayout(settings.key_prefix).stream_stats()
    say(f"backfill with {workers} worker(s) ...")
    started = time.perf_counter()
    procs = [start_worker(settings, work / f"worker-{settings.key_prefix}-{i}.log") for i in range(workers)]
    first = 0.0
    processed = 0
    cpu_at_first: list[float] = []
    try:
        while processed < total:
            processed = int(client.hget(stats, "processed") or 0)
            if processed and not first:
                first, cpu_at_first = time.perf_counter(), [cpu_seconds(p.pid) for p in procs]
            if any(p.poll() is not None for p in procs):
                raise RuntimeError(f"a worker exited; see {work}")
            time.sleep(POLL_S)
        end = time.perf_counter()
        busy = [(cpu_seconds(p.pid) - c) / (end - first) for p, c in zip(procs, cpu_at_first, strict=True)]
        rss = [peak_rss_mib(p.pid) for p in procs]
    finally:
        for p in procs:
            stop_worker(p)
        client.close()
    return {"workers": workers, "events": processed, "seconds": end - first, "eps": processed / (end - first),
            "with_startup_s": end - started, "cpu_busy": busy, "peak_rss_mib": rss}


def redis_memory(settings: Settings, customers: int, before: int) -> dict[str, Any]:
    client = redis.Redis.from_url(settings.redis_url)
    used = int(client.info("memory")["used_memory"])
    client.close()
    return {"used_mib": used / 2**20, "bytes_per_customer": (used - before) / max(customers, 1),
            "customers": customers}


def clear_stream_state(settings: Settings) -> int:
    """Delete what an earlier run's stream left under this prefix (the stack keeps Redis's append-only file, and
    the stream skips events it has applied), keeping a published model; Redis's used memory afterwards."""
    client = redis.Redis.from_url(settings.redis_url)
    keys = KeyLayout(settings.key_prefix)
    model = keys.model_current().rsplit(":", 1)[0] + ":"
    try:
        batch: list[bytes] = []
        for key in client.scan_iter(match=f"{settings.key_prefix}:*", count=10_000):
            if not key.decode().startswith(model):
                batch.append(key)
            if len(batch) >= 10_000:
                client.delete(*batch)
                batch = []
        if batch:
            client.delete(*batch)
        return int(client.info("memory")["used_memory"])
    finally:
        client.close()


def published(settings: Settings) -> bool:
    client = redis.Redis.from_url(settings.redis_url)
    try:
        return bool(client.exists(KeyLayout(settings.key_prefix).model_current()))
    finally:
        client.close()


def api_latency(settings: Settings, customers: list[str], work: Path, seconds: int) -> dict[str, Any]:
    if shutil.which("wrk") is None:
        return {"available": False}
    port = free_port()
    env = settings_env(settings)
    log = work / "api.log"
    with log.open("ab") as out:
        server = subprocess.Popen([RECSYS, "serve", "--port", str(port), "--workers", "1"], env=env, stdout=out,
                                  stderr=subprocess.STDOUT)
    try:
        if not wait_http(f"http://127.0.0.1:{port}/ready", 60, alive=lambda: server.poll() is None):
            raise RuntimeError(f"API did not become ready; see {log}")
        script = work / "ids.lua"
        step = max(1, len(customers) // WRK_IDS)
        script.write_text(WRK_SCRIPT % ",".join(f'"{c}"' for c in customers[::step]))
        wrk(port, "/recommend?customer_id=CUSTOMER&k=10", 32, 2, script)  # warm-up
        return {"available": True} | wrk(port, "/recommend?customer_id=CUSTOMER&k=10", 32, seconds, script)
    finally:
        server.terminate()
        server.wait(timeout=30)


def print_table(report: dict[str, Any]) -> None:
    say("")
    for key, title in (("batch", "a night that evaluates"), ("batch_refit", "the next night (refit)")):
        batch = report.get(key)
        if not batch:
            continue
        say(f"{'batch stage: ' + title:<40} {'seconds':>8} {'peak RSS MiB':>13}")
        for stage in batch["stages"]:
            say(f"{stage['name']:<40} {stage['seconds']:>8.1f} {stage['peak_rss_mib']:>13,.0f}")
        passed = batch["seconds"] < TARGET_BATCH_S and batch["peak_rss_mib"] < TARGET_BATCH_RSS_MIB
        say(f"{'total (wall, whole command)':<40} {batch['seconds']:>8.1f} {batch['peak_rss_mib']:>13,.0f}   "
            f"targets < {TARGET_BATCH_S} s, < {TARGET_BATCH_RSS_MIB:,} MiB: {'PASS' if passed else 'FAIL'}")
        say(f"{batch['memory_plan']}")
        for line in batch["coverage"]:
            say(line)
        say("")
    spark = report.get("spark")
    if spark is not None:
        say(f"spark engine: {spark['seconds']:.1f} s, peak RSS {spark['peak_rss_mib']:,.0f} MiB (Python driver), "
            f"{spark['jvm_peak_rss_mib'] or 0:,.0f} MiB (Spark JVM)" if spark.get("available")
            else "spark engine: not available (no pyspark)")
    stream = report.get("stream")
    if stream:
        p = stream["produce"]
        say(f"\nproduced {p['events']:,} events in {p['seconds']:.0f} s ({p['eps']:,.0f}/s); broker peak RSS "
            f"{p['broker_peak_mib']:,.0f} MiB" + (" - STOPPED at the broker memory limit" if
                                                  p["stopped_by_broker_memory"] else ""))
        say(f"{'backfill':<12} {'events':>11} {'seconds':>8} {'events/s':>9}  worker CPU busy")
        for run in stream["backfill"]:
            busy = ", ".join(f"{b:.0%}" for b in run["cpu_busy"])
            say(f"{run['workers']} worker(s) {run['events']:>11,} {run['seconds']:>8.0f} {run['eps']:>9,.0f}  {busy}")
    memory = report.get("redis")
    if memory:
        say(f"\nRedis: {report['redis_at_start_mib']:,.0f} MiB at the start (what earlier runs left: published "
            f"models, stream state), {memory['used_mib']:,.0f} MiB after the 1-worker backfill: the stream state added "
            f"{memory['bytes_per_customer']:,.0f} bytes per customer ({memory['customers']:,} customers)")
    api = report.get("api")
    if api and api.get("available"):
        say(f"/recommend at c=32, 1 worker: {api['rps']:,.0f} req/s, p50 {api['p50_ms']:.1f} ms, "
            f"p99 {api['p99_ms']:.1f} ms, non-2xx {api['non_2xx']}, socket errors {api['socket_errors']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--lines", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--work", type=Path, default=Path("/tmp/recsys-scale"))
    parser.add_argument("--stream-events", type=int, default=None, help="Replay only the first N lines.")
    parser.add_argument("--broker-rss-gib", type=float, default=12.0)
    parser.add_argument("--api-seconds", type=int, default=10)
    parser.add_argument("--skip-batch", action="store_true")
    parser.add_argument("--skip-spark", action="store_true")
    parser.add_argument("--skip-stream", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/scale.json"))
    args = parser.parse_args()

    spec = SyntheticSpec(customers=args.customers, products=args.products, lines=args.lines, seed=args.seed)
    args.work.mkdir(parents=True, exist_ok=True)
    data = shop(spec, args.work)
    settings = stack_settings(args.work / "run", key_prefix="scale", stream_app_id="scale-1")
    local = LocalStack(settings)
    local.up()
    report: dict[str, Any] = {"spec": asdict(spec) | {"start": str(spec.start)}, "machine": {
        "nproc": len(os.sched_getaffinity(0)), "ram_gib": os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        / 2**30}}
    try:
        client = redis.Redis.from_url(settings.redis_url)
        empty = int(client.info("memory")["used_memory"])
        client.close()
        report["redis_at_start_mib"] = empty / 2**20  # what earlier runs left (models; stream state is cleared below)
        if not args.skip_batch:
            report["batch"] = batch_run(settings, data, args.work, "evaluate")
            report["batch_refit"] = batch_run(settings, data, args.work, "refit")
        if not args.skip_spark:
            report["spark"] = spark_run(settings, data, args.work)
        lines = load_history(data, load_mapping("case_study")).lines  # once, for the replay and the API's ids
        second = settings.model_copy(update={"key_prefix": "scale2", "stream_app_id": "scale-2"})
        if not args.skip_stream:
            clear_stream_state(second)
            before = clear_stream_state(settings)
            broker = next((s.pid for s in local.status() if s.name == "broker"), None)
            produced = produce(settings, lines, args.stream_events, broker, args.broker_rss_gib * 1024)
            report["stream"] = {"produce": produced, "backfill": [
                backfill(settings, produced["events"], 1, args.work)]}
            report["redis"] = redis_memory(settings, produced["customers"], before)
        if published(settings):  # by this run, or by an earlier one (the stack keeps Redis's append-only file)
            customers = sorted(map(str, lines["customer_id"].unique()))
            report["api"] = api_latency(settings, customers, args.work, args.api_seconds)
        if not args.skip_stream:
            report["stream"]["backfill"].append(backfill(second, report["stream"]["produce"]["events"], 2,
                                                         args.work))
    finally:
        local.down()
    report["benchmark_ru_maxrss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str))
    print_table(report)
    say(f"JSON: {args.out}")


if __name__ == "__main__":
    main()

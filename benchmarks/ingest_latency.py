"""POST-to-state latency: a purchase POSTed to /events/purchases (acks=all) until `GET /customers/{id}` shows it,
through the real path: API (uvicorn) -> Kafka (local Tansu) -> Faust worker -> Redis -> API. Each sample is a new
customer, so "shows" means the first 200 instead of a 404. Target: p99 under 1 s. Prints a table and writes JSON.

    .venv/bin/python -m benchmarks.ingest_latency [--samples 300] [--rate 10] [--out benchmarks/results/ingest.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import statistics
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from benchmarks.stats import percentile
from common.settings import Settings
from stack import LocalStack
from stack.scratch import free_port, settings_env, stack_settings, start_worker, stop_worker
from stack.system import RECSYS, wait_http

AUTH = {"X-API-Key": secrets.token_hex(16)}  # a throwaway key for the API this benchmark starts
POLL_S = 0.005
TARGET_P99_S = 1.0


def serve(settings: Settings, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = settings_env(settings) | {"RECSYS_API_KEY": AUTH["X-API-Key"]}
    with log.open("ab") as out:
        server = subprocess.Popen([RECSYS, "serve", "--port", str(port)], env=env, stdout=out,
                                  stderr=subprocess.STDOUT)
    if not wait_http(f"http://127.0.0.1:{port}/health", 60, alive=lambda: server.poll() is None):
        server.terminate()
        raise RuntimeError(f"API did not start; see {log}")
    return server


def purchase(customer: str) -> dict[str, Any]:
    return {"order_id": f"o-{customer}", "customer_id": customer, "product_id": "p-1", "category": "bench",
            "units": 1, "amount": 9.99, "event_time": datetime.now(UTC).isoformat(), "line_no": 0}


async def warm_up(client: httpx.AsyncClient, run: str, timeout_s: float = 60) -> None:
    """Until the API's producer is connected and the worker has joined: one purchase seen end to end."""
    deadline = time.monotonic() + timeout_s
    customer = f"{run}-warm"
    while time.monotonic() < deadline:
        posted = await client.post("/events/purchases", json=purchase(customer), headers=AUTH)
        if posted.status_code == 202:
            while time.monotonic() < deadline:
                if (await client.get(f"/customers/{customer}")).status_code == 200:
                    return
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
    raise RuntimeError("no purchase reached the customer view during warm-up")


async def sample(client: httpx.AsyncClient, customer: str, timeout_s: float = 10) -> dict[str, float]:
    started = time.perf_counter()
    posted = await client.post("/events/purchases", json=purchase(customer), headers=AUTH)
    acknowledged = time.perf_counter()
    if posted.status_code != 202:
        raise RuntimeError(f"POST answered {posted.status_code}: {posted.text}")
    while time.perf_counter() - started < timeout_s:
        if (await client.get(f"/customers/{customer}")).status_code == 200:
            return {"post_s": acknowledged - started, "visible_s": time.perf_counter() - started}
        await asyncio.sleep(POLL_S)
    return {"post_s": acknowledged - started, "visible_s": float("inf")}


async def measure(port: int, samples: int, rate: float) -> list[dict[str, float]]:
    run = f"bench{int(time.time())}"
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        await warm_up(client, run)
        tasks = []
        for i in range(samples):  # a steady arrival rate, as a checkout would post
            tasks.append(asyncio.create_task(sample(client, f"{run}-{i}")))
            await asyncio.sleep(1 / rate)
        return list(await asyncio.gather(*tasks))


def summarise(rows: list[dict[str, float]]) -> dict[str, Any]:
    summary: dict[str, Any] = {"samples": len(rows)}
    for name in ("post_s", "visible_s"):
        values = [r[name] for r in rows]
        summary[name] = {"p50": percentile(values, 50), "p95": percentile(values, 95),
                         "p99": percentile(values, 99), "max": max(values), "mean": statistics.fmean(values)}
    summary["within_1s"] = sum(r["visible_s"] <= TARGET_P99_S for r in rows) / len(rows)
    summary["meets_target"] = summary["visible_s"]["p99"] <= TARGET_P99_S
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--rate", type=float, default=10.0, help="POSTs per second")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/ingest_latency.json"))
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    settings = stack_settings(work / "run", key_prefix="benchingest")
    local = LocalStack(settings)
    local.up()
    worker = start_worker(settings, work / "worker.log")
    port = free_port()
    server = serve(settings, port, work / "api.log")
    try:
        print(f"{args.samples} purchases at {args.rate:g}/s, each a new customer ...", flush=True)
        rows = asyncio.run(measure(port, args.samples, args.rate))
    finally:
        server.terminate()
        server.wait(timeout=30)
        stop_worker(worker)
        local.down()
    summary = summarise(rows)
    print(f"\n{'step':<34} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for name, label in (("post_s", "POST -> 202 (acks=all)"), ("visible_s", "POST -> visible in /customers/{id}")):
        s = summary[name]
        print(f"{label:<34} {s['p50'] * 1000:>8.1f} {s['p95'] * 1000:>8.1f} {s['p99'] * 1000:>8.1f} "
              f"{s['max'] * 1000:>8.1f}")
    verdict = "yes" if summary["meets_target"] else "NO"
    print(f"visible within 1 s: {summary['within_1s']:.1%}; p99 under 1 s: {verdict}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": {"nproc": os.cpu_count(), "python": platform.python_version()},
                                    "samples": args.samples, "rate": args.rate, "poll_s": POLL_S,
                                    "summary": summary, "rows": rows}, indent=2))
    print(f"JSON: {args.out}")


if __name__ == "__main__":
    main()

"""API latency under uvicorn as in production (uvloop, httptools; 1 and 2 workers), loaded from a separate
process by wrk at concurrency 1, 8, 32, 128. Three endpoints of the same app: a constant (floor), the exact
Redis reads of /recommend in one pipelined round trip returned raw (floor), and /recommend itself. Prints a
table and writes JSON. Needs `wrk` (Debian package `wrk`).

    .venv/bin/python -m benchmarks.api_latency [--seconds 5] [--out benchmarks/results/api_latency.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

import redis
import redis.asyncio as aioredis

from batch.pipeline import EvaluationOptions, run
from batch.stages import Stages
from common.data import load_history, load_mapping
from common.data.synthetic import SyntheticSpec, write
from common.keys import KeyLayout
from common.settings import Settings
from producers.replay import to_events
from stack import LocalStack
from stack.scratch import free_port, stack_settings
from stack.system import wait_http
from stream_app.state import StateWriter

RECSYS = str(Path(sys.executable).parent / "recsys")
CONCURRENCY = (1, 8, 32, 128)
WORKERS = (1, 2)
ENDPOINTS = {
    "constant": "/bench/constant",
    "same-keys": "/bench/same-keys?customer_id=CUSTOMER",
    "recommend": "/recommend?customer_id=CUSTOMER&k=10",
}
WRK_SCRIPT = """
ids = {%s}
request = function()
  local path = string.gsub(wrk.path, "CUSTOMER", ids[math.random(#ids)])
  return wrk.format("GET", path)
end
"""


def prepare(settings: Settings, work: Path) -> list[str]:
    """A published model and live stream state for a synthetic shop; returns its customer ids."""
    write(SyntheticSpec(), work / "data")
    loaded = load_history(work / "data", load_mapping("case_study"))
    keys = KeyLayout(settings.key_prefix)
    run(loaded, EvaluationOptions(case_study=False), work / "artifacts", redis.Redis.from_url(settings.redis_url), keys,
        Stages(), progress=lambda _m: None)

    async def stream_state() -> None:
        client = aioredis.from_url(settings.redis_url)
        writer = StateWriter(client, keys)
        events = list(to_events(loaded.lines))
        for start in range(0, len(events), 1000):
            await writer.apply(events[start:start + 1000])
        await client.aclose()

    asyncio.run(stream_state())
    return sorted(loaded.lines["customer_id"].unique())


def serve(settings: Settings, port: int, workers: int, log: Path) -> subprocess.Popen[bytes]:
    env = os.environ | {
        "RECSYS_REDIS_URL": settings.redis_url, "RECSYS_BROKER_URL": settings.broker_url,
        "RECSYS_KEY_PREFIX": settings.key_prefix, "RECSYS_API_FLOOR_ENDPOINTS": "1",
    }
    with log.open("ab") as out:
        server = subprocess.Popen([RECSYS, "serve", "--port", str(port), "--workers", str(workers)], env=env,
                                  stdout=out, stderr=subprocess.STDOUT)
    if not wait_http(f"http://127.0.0.1:{port}/ready", 60, alive=lambda: server.poll() is None):
        server.terminate()
        raise RuntimeError(f"API did not become ready; see {log}")
    return server


def wrk(port: int, path: str, connections: int, seconds: int, script: Path) -> dict[str, Any]:
    threads = 1 if connections == 1 else 2
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script),
         f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True, check=True).stdout
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50_ms": _ms(re.search(r"50%\s+([\d.]+\w+)", out).group(1)),  # type: ignore[union-attr]
        "p99_ms": _ms(re.search(r"99%\s+([\d.]+\w+)", out).group(1)),  # type: ignore[union-attr]
        "non_2xx": int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)) else 0,
        "socket_errors": sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out)),
    }


def _ms(text: str) -> float:
    value, unit = float(re.match(r"[\d.]+", text).group(0)), re.sub(r"[\d.]+", "", text)  # type: ignore[union-attr]
    return value * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def exposure_counts(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {name: float(re.search(rf"^recsys_exposures_{name} ([\d.e+]+)$", text, re.M).group(1))  # type: ignore
            for name in ("sent", "lost")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/api_latency.json"))
    parser.add_argument("--workers", type=int, nargs="+", default=list(WORKERS))
    parser.add_argument("--connections", type=int, nargs="+", default=list(CONCURRENCY))
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install -y wrk")

    work = Path(tempfile.mkdtemp(prefix="bench-api-"))
    settings = stack_settings(work / "run", key_prefix="benchapi")
    local = LocalStack(settings)
    local.up()
    results: list[dict[str, Any]] = []
    exposures: dict[str, dict[str, float]] = {}
    try:
        print("publishing a model and stream state for the synthetic shop ...", flush=True)
        ids = prepare(settings, work)
        script = work / "ids.lua"
        script.write_text(WRK_SCRIPT % ",".join(f'"{c}"' for c in ids))
        for workers in args.workers:
            port = free_port()
            server = serve(settings, port, workers, work / f"api-{workers}.log")
            try:
                for name, path in ENDPOINTS.items():
                    wrk(port, path, 8, 1, script)  # warm-up: connections, model cache, rules cache
                    for connections in args.connections:
                        row = {"workers": workers, "endpoint": name, "connections": connections,
                               **wrk(port, path, connections, args.seconds, script)}
                        results.append(row)
                        print(f"{workers}w {name:<10} c={connections:<4} {row['rps']:>8,.0f} req/s  "
                              f"p50 {row['p50_ms']:.2f} ms  p99 {row['p99_ms']:.2f} ms  non-2xx {row['non_2xx']}",
                              flush=True)
                exposures[f"{workers}w"] = exposure_counts(port)
            finally:
                server.terminate()
                server.wait(timeout=30)
    finally:
        local.down()
    summary = report(results, args.workers, args.connections)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": {"nproc": os.cpu_count(), "python": platform.python_version()},
                                    "seconds": args.seconds, "results": results, "targets": summary,
                                    "exposures": exposures}, indent=2))
    print(f"exposures sent/lost during the runs: {exposures}")
    print(f"JSON: {args.out}")


def report(results: list[dict[str, Any]], workers_run: list[int], connections: list[int]) -> dict[str, Any]:
    print(f"\n{'workers':>7} {'endpoint':<10} " + " ".join(f"{'c=' + str(c):>22}" for c in connections))
    for workers in workers_run:
        for name in ENDPOINTS:
            cells = [next(r for r in results if r["workers"] == workers and r["endpoint"] == name
                          and r["connections"] == c) for c in connections]
            print(f"{workers:>7} {name:<10} " + " ".join(
                f"{r['rps']:>7,.0f} {r['p50_ms']:>5.2f}/{r['p99_ms']:<6.2f}ms" for r in cells))

    def cell(workers: int, name: str, c: int) -> dict[str, Any]:
        return next(r for r in results if r["workers"] == workers and r["endpoint"] == name and r["connections"] == c)

    floor, rec = cell(1, "same-keys", 32), cell(1, "recommend", 32)
    targets = {
        "recommend_vs_same_keys_rps_c32": rec["rps"] / floor["rps"],
        "recommend_vs_same_keys_p99_c32": rec["p99_ms"] / floor["p99_ms"],
        "recommend_p50_ms_c1": cell(1, "recommend", 1)["p50_ms"],
        "non_2xx_total": sum(r["non_2xx"] for r in results),
        "socket_errors_total": sum(r["socket_errors"] for r in results),
    }
    print(f"\n/recommend vs same-keys at c=32, 1 worker: {targets['recommend_vs_same_keys_rps_c32']:.2f}x req/s "
          f"(target >= 0.85), p99 {targets['recommend_vs_same_keys_p99_c32']:.2f}x (target <= 1.3)")
    print(f"/recommend p50 at c=1: {targets['recommend_p50_ms_c1']:.2f} ms (target <= 2 ms); "
          f"non-2xx: {targets['non_2xx_total']} (target 0); socket errors: {targets['socket_errors_total']}")
    return targets


if __name__ == "__main__":
    main()

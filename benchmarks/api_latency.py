"""`/recommend` against two floors, under uvicorn as in production (uvloop, httptools; 1 and 2 workers), loaded
from a separate process by wrk at concurrency 1, 8, 32, 128, then open loop at a fixed rate:

- bare: a FastAPI app with no middleware answering a constant JSON body of the size of a real `/recommend`
  answer (benchmarks/floors/bare_app.py), under stock uvicorn (httptools): the targets' yardstick;
- bare-one-write: the same app under the protocol the API runs (`api.adapters.http_protocol`: an answer's head
  and body in one socket write), to show what that protocol alone gives;
- same reads: the production app with one more route, mounted only here, that makes exactly `/recommend`'s Redis
  reads by calling the same function (benchmarks/floors/same_reads_app.py) and answers that constant body;
- `/recommend` itself, on the same process as the same-reads floor.

With `--with-worker` the real stream worker runs beside them (the whole embedded default: broker, Redis, worker
and API on one machine) and applies the exposures the load itself creates; after each `/recommend` cell the
benchmark waits until the worker has applied every exposure the API sent and records how long that took. With
`--data` the shop is that history (e.g. Online Retail with `--preset uci`) instead of the synthetic one.

Cells run endpoint after endpoint at each concurrency, so the ratios compare neighbours in time; with `--rounds N`
every cell runs N times, the endpoints taking turns each round (backwards every other round), and the ratios are
those of the means over rounds (each round's are printed too), so a slow spell of this shared machine falls on
every endpoint rather than on one. With the worker, every floor cell starts after it has applied every exposure
the API sent.
Each cell also records the server's CPU time per request (less sensitive to a busy machine than req/s). Prints a
table and the targets, writes JSON. Needs `wrk` (Debian package `wrk`); `--profile` also needs py-spy (dev extra).

    .venv/bin/python -m benchmarks.api_latency [--seconds 5] [--rounds 1] [--open-loop-seconds 30] [--profile]
        [--with-worker] [--data ../shared/data/online_retail_uci/online_retail.csv.gz --preset uci]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from benchmarks.floors.bare_app import BODY_FILE_ENV
from benchmarks.floors.same_reads_app import GC_PATH, NO_GC_FREEZE_ENV
from benchmarks.floors.same_reads_app import PATH as SAME_READS_PATH
from benchmarks.serving import cpu_seconds, prepare_shop, start_server, stop_server
from common.keys import KeyLayout
from common.settings import Settings
from stack import LocalStack
from stack.scratch import free_port, stack_settings, start_worker, stop_worker

APP = "benchmarks.floors.same_reads_app:create_app"  # the production app plus the same-reads floor
BARE_APP = "benchmarks.floors.bare_app:create_app"
CONCURRENCY = (1, 8, 32, 128)
WORKERS = (1, 2)
K = 10
ENDPOINTS = {
    "bare": "/constant",
    "bare-one-write": "/constant",
    "same-reads": f"{SAME_READS_PATH}?customer_id=CUSTOMER",
    "recommend": f"/recommend?customer_id=CUSTOMER&k={K}",
}
WRK_SCRIPT = """
ids = {%s}
request = function()
  local path = string.gsub(wrk.path, "CUSTOMER", ids[math.random(#ids)])
  return wrk.format("GET", path)
end
"""
TARGETS = {"rps_vs_bare_c32": 0.4, "p99_vs_bare_c32": 3.0, "open_loop_p99_ms": 5.0, "open_loop_p999_ms": 20.0,
           "p99_vs_bare_c128": 3.0}
WITH_WORKER_TARGETS = {"rps_vs_bare_c32": 0.35, "p99_vs_bare_c32": 4.0}  # the stream worker shares the machine


def wrk(port: int, path: str, connections: int, seconds: int, script: Path) -> dict[str, Any]:
    threads = 1 if connections == 1 else 2
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script),
         f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True, check=True).stdout
    return {
        "requests": int(_found(r"(\d+) requests in", out)),
        "rps": float(_found(r"Requests/sec:\s+([\d.]+)", out)),
        "p50_ms": _ms(_found(r"50%\s+([\d.]+\w+)", out)),
        "p99_ms": _ms(_found(r"99%\s+([\d.]+\w+)", out)),
        "non_2xx": int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)) else 0,
        "socket_errors": sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out)),
    }


def _found(pattern: str, text: str) -> str:
    match = re.search(pattern, text)
    if match is None:
        raise RuntimeError(f"no {pattern!r} in wrk's output:\n{text}")
    return match.group(1)


def _ms(text: str) -> float:
    value, unit = float(re.sub(r"[a-z]+$", "", text)), re.sub(r"^[\d.]+", "", text)
    return value * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def measured(port: int, path: str, connections: int, seconds: int, script: Path, pid: int,
             beside: dict[str, int]) -> dict[str, Any]:
    """A wrk cell plus the server's CPU time per request during it, and that of the processes `beside` it (the
    broker, Redis, the stream worker) and of the whole machine."""
    pids = {"app": pid} | beside
    before = {name: cpu_seconds(p) for name, p in pids.items()} | {"machine": machine_cpu_seconds()}
    row = wrk(port, path, connections, seconds, script)
    after = {name: cpu_seconds(p) for name, p in pids.items()} | {"machine": machine_cpu_seconds()}
    per_request = {name: 1e6 * (after[name] - before[name]) / max(row["requests"], 1) for name in after}
    return row | {"cpu_us_per_request": per_request.pop("app"), "cpu_us_per_request_beside": per_request}


def machine_cpu_seconds() -> float:
    """Busy CPU time of the whole machine so far (all cores), from /proc/stat."""
    ticks = [int(t) for t in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = ticks[3] + ticks[4]  # idle, iowait
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def sample_body(port: int, customers: list[str]) -> bytes:
    """A real `/recommend` answer of the median size over some customers (both groups): the floors' body."""
    bodies: list[bytes] = []
    for customer in customers:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/recommend?customer_id={customer}&k={K}") as answer:
            bodies.append(answer.read())
    median = statistics.median_low(len(b) for b in bodies)
    return next(b for b in bodies if len(b) == median)


def open_loop(port: int, path: str, rate: float, seconds: float, ids_file: Path) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "benchmarks.open_loop", f"http://127.0.0.1:{port}{path}",
                          "--rate", str(rate), "--seconds", str(seconds), "--ids", str(ids_file)],
                         capture_output=True, text=True, check=True).stdout
    result: dict[str, Any] = json.loads(out)
    return result


def applied_exposures(client: redis.Redis, keys: KeyLayout, settings: Settings) -> int:
    """Exposures of the settings' experiment the stream worker has applied, over both groups."""
    return sum(int(client.hget(keys.ab_group_counters(settings.ab_experiment, group), "exposures") or 0)
               for group in ("control", "treatment"))


def caught_up(settings: Settings, sent: float, timeout_s: float = 120) -> float:
    """Seconds until the worker has applied `sent` exposures (the API's count), or the timeout."""
    client = redis.Redis.from_url(settings.redis_url)
    keys = KeyLayout(settings.key_prefix)
    start = time.monotonic()
    try:
        while applied_exposures(client, keys, settings) < sent and time.monotonic() - start < timeout_s:
            time.sleep(0.05)
        return time.monotonic() - start
    finally:
        client.close()


def exposure_counts(port: int) -> dict[str, float]:
    """From one worker's /metrics (with two workers, the one that answers)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {name: float(_found(rf"(?m)^recsys_exposures_{name} ([\d.e+]+)$", text)) for name in ("sent", "lost")}


def collection_times(port: int) -> dict[str, dict[str, float]]:
    """The garbage collector's pauses in the (one answering) worker of the app, over its whole run."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{GC_PATH}", timeout=5) as response:
        times: dict[str, dict[str, float]] = json.loads(response.read())
    return times


def profile(pid: int, port: int, path: str, seconds: int, script: Path, out: Path) -> dict[str, Any]:
    """py-spy samples the server while wrk loads it at c=32 (an extra run: sampling slows the server)."""
    spy = subprocess.Popen(["py-spy", "record", "-p", str(pid), "-r", "250", "-d", str(seconds + 1), "--format",
                            "raw", "-o", str(out), "--nonblocking"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    wrk(port, path, 32, seconds, script)
    spy.wait(timeout=60)
    return summarize_profile(out)


def summarize_profile(raw: Path, top: int = 20) -> dict[str, Any]:
    """Shares of samples per frame: self (the frame was running) and inclusive (it was on the stack)."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        count = int(count_text)
        frames = [_frame(f) for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    return {"samples": total,
            "self": [(frame, round(n / total, 4)) for frame, n in own.most_common(top)],
            "inclusive": [(frame, round(n / total, 4)) for frame, n in inclusive.most_common(top * 3)]}


def _frame(text: str) -> str:
    """'fn (path/to/site-packages/pkg/mod.py:12)' -> 'fn (pkg/mod.py)'."""
    name, _, where = text.partition(" (")
    where = re.sub(r"^.*?(site-packages|python3\.\d+)/", "", where.rstrip(")").rsplit(":", 1)[0])
    return f"{name} ({where.replace(os.getcwd() + '/', '')})"


def run_workers(settings: Settings, work: Path, workers: int, args: argparse.Namespace, ids: list[str],
                log: Callable[[str], None]) -> dict[str, Any]:
    script = work / "ids.lua"
    body_file = work / "body.json"
    app_port, bare_port, bare_one_write_port = free_port(), free_port(), free_port()
    env = {BODY_FILE_ENV: str(body_file)} | ({NO_GC_FREEZE_ENV: "1"} if args.no_gc_freeze else {})
    app = start_server(APP, settings, app_port, workers, work / f"app-{workers}.log", env)
    bare = start_server(BARE_APP, settings, bare_port, workers, work / f"bare-{workers}.log", env,
                        ready_path="/constant", http="httptools")
    bare_one_write = start_server(BARE_APP, settings, bare_one_write_port, workers,
                                  work / f"bare-one-write-{workers}.log", env, ready_path="/constant")
    servers = {"bare": (bare, bare_port), "bare-one-write": (bare_one_write, bare_one_write_port),
               "same-reads": (app, app_port), "recommend": (app, app_port)}
    cells: list[dict[str, Any]] = []
    result: dict[str, Any] = {"cells": cells, "body_bytes": len(body_file.read_bytes())}
    worker = start_worker(settings, work / f"worker-{workers}.log") if args.with_worker else None
    beside = {s.name: s.pid for s in LocalStack(settings).status() if s.pid is not None}
    if worker is not None:
        beside["worker"] = worker.pid
    try:
        for name, (_server, port) in servers.items():
            wrk(port, ENDPOINTS[name], 8, 1, script)  # warm-up: connections, model cache, rules cache
        if worker is not None and workers == 1:  # the first bare cell starts with the warm-up's exposures applied
            caught_up(settings, exposure_counts(app_port)["sent"])
        for round_no, connections in ((r, c) for r in range(1, args.rounds + 1) for c in args.connections):
            # the endpoints in turn, backwards every other round, so a drift within the run falls on all of them
            for name, (server, port) in (servers.items() if round_no % 2 else reversed(servers.items())):
                row = {"round": round_no, "workers": workers, "endpoint": name, "connections": connections,
                       **measured(port, ENDPOINTS[name], connections, args.seconds, script, server.pid, beside)}
                if worker is not None and name == "recommend" and workers == 1:  # /metrics: one worker's count
                    # so the floor cells after it start with the worker idle again (one API worker only)
                    row["worker_catch_up_s"] = caught_up(settings, exposure_counts(port)["sent"])
                cells.append(row)
                log(f"{workers}w round {round_no} {name:<14} c={connections:<4} {row['rps']:>8,.0f} req/s  p50 "
                    f"{row['p50_ms']:.2f} ms  p99 {row['p99_ms']:.2f} ms  CPU {row['cpu_us_per_request']:.0f} "
                    f"us/req  non-2xx {row['non_2xx']}  socket errors {row['socket_errors']}  beside: " + ", ".join(
                        f"{n} {us:.0f}" for n, us in row["cpu_us_per_request_beside"].items())
                    + (f"  worker caught up {row['worker_catch_up_s']:.1f} s after" if "worker_catch_up_s" in row
                       else ""))
        if workers == 1 and args.open_loop_seconds:
            ids_file = work / "ids.txt"
            ids_file.write_text("\n".join(ids))
            result["open_loop"] = {}
            for name in ("bare", "same-reads", "recommend"):
                port = servers[name][1]
                loop = open_loop(port, ENDPOINTS[name], args.rate, args.open_loop_seconds, ids_file)
                result["open_loop"][name] = loop
                log(f"{workers}w {name:<10} open loop {loop['rate']:.0f}/s for {loop['seconds']:.0f}s: p50 "
                    f"{loop['p50_ms']:.2f} p99 {loop['p99_ms']:.2f} p99.9 {loop['p99.9_ms']:.2f} max "
                    f"{loop['max_ms']:.1f} ms (from send: p99 {loop['from_send_p99_ms']:.2f} p99.9 "
                    f"{loop['from_send_p99.9_ms']:.2f}; sent late p99 {loop['send_late_p99_ms']:.2f})  "
                    f"statuses {loop['statuses']}  errors {loop['errors']}")
        if workers == 1 and args.profile:
            result["profile"] = profile(app.pid, app_port, ENDPOINTS["recommend"], 10, script, work / "profile.txt")
        result["exposures"] = exposure_counts(app_port)
        result["gc"] = collection_times(app_port)
        log(f"{workers}w garbage collections in the app: " + ", ".join(
            f"gen{g} {t['collections']:.0f}x, max {t['max_ms']:.1f} ms, total {t['total_ms']:.0f} ms"
            for g, t in sorted(result["gc"].items())))
    finally:
        stop_server(app)
        stop_server(bare)
        stop_server(bare_one_write)
        if worker is not None:
            stop_worker(worker)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=1,
                        help="run every cell this many times, the endpoints in turn each round; the ratios are "
                             "taken of the means over rounds, and each round's are printed too")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/api_latency.json"))
    parser.add_argument("--workers", type=int, nargs="+", default=list(WORKERS))
    parser.add_argument("--connections", type=int, nargs="+", default=list(CONCURRENCY))
    parser.add_argument("--rate", type=float, default=500, help="open-loop requests per second")
    parser.add_argument("--open-loop-seconds", type=float, default=30, help="0 skips the open-loop run")
    parser.add_argument("--profile", action="store_true", help="py-spy the 1-worker /recommend at c=32")
    parser.add_argument("--no-gc-freeze", action="store_true", help="skip the app's gc.freeze(), to compare")
    parser.add_argument("--with-worker", action="store_true",
                        help="run the stream worker beside the API, applying the exposures the load creates")
    parser.add_argument("--data", type=Path, help="a history to serve (default: the synthetic shop)")
    parser.add_argument("--preset", default="case_study", help="the column mapping of --data")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install -y wrk")
    if args.profile and shutil.which("py-spy") is None:
        sys.exit("py-spy is not installed: pip install py-spy (the dev extra)")

    work = Path(tempfile.mkdtemp(prefix="bench-api-"))
    settings = stack_settings(work / "run", key_prefix="benchapi")
    local = LocalStack(settings)
    local.up()
    runs: dict[str, Any] = {}
    try:
        print(f"publishing a model and stream state for {args.data or 'the synthetic shop'} ...", flush=True)
        ids = sorted(prepare_shop(settings, work, args.data, args.preset).lines["customer_id"].unique())
        (work / "ids.lua").write_text(WRK_SCRIPT % ",".join(f'"{c}"' for c in ids))
        port = free_port()
        app = start_server(APP, settings, port, 1, work / "sample.log", {BODY_FILE_ENV: "/dev/null"})
        try:
            (work / "body.json").write_bytes(sample_body(port, ids[:40]))
        finally:
            stop_server(app)
        for workers in args.workers:
            runs[f"{workers}w"] = run_workers(settings, work, workers, args, ids, lambda line: print(line, flush=True))
    finally:
        local.down()
    targets = report(runs, args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": {"nproc": os.cpu_count(), "python": platform.python_version()},
                                    "seconds": args.seconds, "rounds": args.rounds, "with_worker": args.with_worker,
                                    "data": str(args.data or "synthetic"), "runs": runs, "targets": targets},
                                   indent=2))
    print(f"JSON: {args.out}")


def over_rounds(cells: list[dict[str, Any]], name: str, connections: int) -> dict[str, Any]:
    """An endpoint's cell at a concurrency, its figures the means over the rounds (counts summed)."""
    mine = [c for c in cells if c["endpoint"] == name and c["connections"] == connections]
    if len(mine) == 1:
        return mine[0]
    return {"rps": statistics.fmean(c["rps"] for c in mine), "p50_ms": statistics.fmean(c["p50_ms"] for c in mine),
            "p99_ms": statistics.fmean(c["p99_ms"] for c in mine),
            "cpu_us_per_request": statistics.fmean(c["cpu_us_per_request"] for c in mine),
            "non_2xx": sum(c["non_2xx"] for c in mine), "socket_errors": sum(c["socket_errors"] for c in mine)}


def report(runs: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    print(f"\n{'workers':>7} {'endpoint':<14} " + " ".join(f"{'c=' + str(c):>24}" for c in args.connections))
    for workers, run in runs.items():
        for name in ENDPOINTS:
            cells = [over_rounds(run["cells"], name, c) for c in args.connections]
            print(f"{workers.rstrip('w'):>7} {name:<14} " + " ".join(
                f"{c['rps']:>7,.0f} {c['p50_ms']:>6.2f}/{c['p99_ms']:<7.2f}ms" for c in cells))
    print("(req/s, p50/p99 ms" + (f"; means over {args.rounds} rounds)" if args.rounds > 1 else ")"))
    one = runs.get("1w")
    if one is None or 32 not in args.connections:
        return {}

    def cell(name: str, connections: int) -> dict[str, Any]:
        return over_rounds(one["cells"], name, connections)

    targets = TARGETS | (WITH_WORKER_TARGETS if args.with_worker else {})
    bare, floor, rec = cell("bare", 32), cell("same-reads", 32), cell("recommend", 32)
    bare_one_write = cell("bare-one-write", 32)
    measured_ratios: dict[str, Any] = {
        "rps_vs_bare_c32": rec["rps"] / bare["rps"],
        "p99_vs_bare_c32": rec["p99_ms"] / bare["p99_ms"],
        "rps_vs_same_reads_c32": rec["rps"] / floor["rps"],
        "rps_vs_bare_one_write_c32": rec["rps"] / bare_one_write["rps"],
        "p99_vs_bare_one_write_c32": rec["p99_ms"] / bare_one_write["p99_ms"],
        "cpu_us_per_request_c32": {name: cell(name, 32)["cpu_us_per_request"] for name in ENDPOINTS},
        "non_2xx_total": sum(c["non_2xx"] for r in runs.values() for c in r["cells"]),
        "socket_errors_total": sum(c["socket_errors"] for r in runs.values() for c in r["cells"]),
    }
    if args.rounds > 1:
        def in_round(n: int, name: str) -> dict[str, Any]:
            return next(c for c in one["cells"] if c["round"] == n and c["endpoint"] == name and c["connections"] == 32)

        measured_ratios["rounds_c32"] = [
            {"rps_vs_bare": r["rps"] / b["rps"], "p99_vs_bare": r["p99_ms"] / b["p99_ms"]}
            for r, b in ((in_round(n, "recommend"), in_round(n, "bare")) for n in range(1, args.rounds + 1))]
        print("\n1 worker, c=32, each round: " + ", ".join(
            f"{r['rps_vs_bare']:.2f}x req/s, p99 {r['p99_vs_bare']:.2f}x" for r in measured_ratios["rounds_c32"]))
    print(f"\n1 worker, c=32: /recommend {measured_ratios['rps_vs_bare_c32']:.3f}x the bare app's req/s (target >= "
          f"{targets['rps_vs_bare_c32']}), p99 {measured_ratios['p99_vs_bare_c32']:.3f}x (target <= "
          f"{targets['p99_vs_bare_c32']}); {measured_ratios['rps_vs_same_reads_c32']:.2f}x the same-reads floor; "
          f"{measured_ratios['rps_vs_bare_one_write_c32']:.2f}x the bare app's req/s and "
          f"{measured_ratios['p99_vs_bare_one_write_c32']:.2f}x its p99 under the API's one-write protocol")
    print("CPU per request at c=32: " + ", ".join(
        f"{name} {us:.0f} us" for name, us in measured_ratios["cpu_us_per_request_c32"].items()))
    if 128 in args.connections:
        bare128, rec128 = cell("bare", 128), cell("recommend", 128)
        measured_ratios |= {"p99_vs_bare_c128": rec128["p99_ms"] / bare128["p99_ms"],
                            "recommend_non_2xx_c128": rec128["non_2xx"]}
        print(f"1 worker, c=128: /recommend non-2xx {rec128['non_2xx']} (target 0), p99 "
              f"{measured_ratios['p99_vs_bare_c128']:.2f}x the bare app's (target <= {targets['p99_vs_bare_c128']})")
    loop = one.get("open_loop", {}).get("recommend")
    if loop:
        measured_ratios |= {"open_loop_p99_ms": loop["p99_ms"], "open_loop_p999_ms": loop["p99.9_ms"]}
        floors = one["open_loop"]
        print(f"open loop {loop['rate']:.0f}/s for {loop['seconds']:.0f}s: /recommend p99 {loop['p99_ms']:.2f} ms "
              f"(target <= {targets['open_loop_p99_ms']}), p99.9 {loop['p99.9_ms']:.2f} ms (target <= "
              f"{targets['open_loop_p999_ms']}), timed from when each request was due; under the same load the "
              f"bare app: p99 {floors['bare']['p99_ms']:.2f}, p99.9 {floors['bare']['p99.9_ms']:.2f} ms; the "
              f"same reads: p99 {floors['same-reads']['p99_ms']:.2f}, p99.9 {floors['same-reads']['p99.9_ms']:.2f} ms")
    print(f"non-2xx in all cells: {measured_ratios['non_2xx_total']}; socket errors: "
          f"{measured_ratios['socket_errors_total']}; exposures sent/lost: "
          + ", ".join(f"{w} {r['exposures']}" for w, r in runs.items()))
    if "profile" in one:
        print("\npy-spy, /recommend at c=32, 1 worker (share of samples, self):")
        for frame, share in one["profile"]["self"][:15]:
            print(f"  {share:6.1%}  {frame}")
    return {"measured": measured_ratios, "targets": targets}


if __name__ == "__main__":
    main()

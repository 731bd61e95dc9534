"""`/recommend` while a shop-scale model version is published: does serving keep its latency?

On a stack of its own (redis-server with the local stack's persistence: the append-only file, fsynced every second,
and RDB snapshots if `--redis-save` asks), a synthetic shop gets a real fitted model (the served lists, card,
rules), and then model versions at shop scale (default 200k customers x 100k products, the shapes of the real one
repeated) are published while one API worker answers `/recommend` for a steady open-loop load
(`benchmarks.open_loop`, default 1,000 req/s). Each publish is timed, and the requests due during it are compared
with those of a quiet period before: 5xx, errors, p50, p99 and max; so are those due in the AFTER_S seconds after it
(the API switching to the new version, a rewrite of the append-only file the publish set off). The publishes run
unpaced (`RECSYS_PUBLISH_MB_PER_S=0` and `RECSYS_PUBLISH_BUSY_SHARE=1`) and then paced (the settings' defaults),
each after Redis has finished the previous one's background save and rewrite.

Each publish also gets a timeline, second by second: the requests' p99, which Redis nodes ran a background rewrite
or snapshot, and the CPU (in cores) of the API, the Redis nodes (their rewrite children included), the load
generator and the publisher. It goes into the JSON, and is plotted next to it (`--out` with `.png`).

    .venv/bin/python -m benchmarks.publish_stall [--customers 200000] [--products 100000] [--rate 1000]

Target (issue 23): zero 5xx during the publish, and its p99 at most 3x the p99 before it.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import redis

from batch.publish import UNPACED, ModelBundle, Publishing, publish, publish_progress, read_per_customer
from benchmarks.serving import prepare_shop, process_cpu, start_server, stop_server
from benchmarks.stats import percentile
from common.keys import KeyLayout
from common.redis_clients import SyncRedis, sync_client
from common.settings import Settings
from stack import LocalStack
from stack.scratch import free_port, stack_settings

TARGET_P99_RATIO = 3.0
AFTER_S = 5.0
K = 10
SAMPLE_S = 0.5


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def published_bundle(settings: Settings, keys: KeyLayout) -> ModelBundle:
    """The version the synthetic shop's batch run published, read back as a bundle."""
    client = sync_client(settings, decode_responses=True)
    v = str(client.get(keys.model_current()))

    def text(key: str) -> Any:
        raw = client.get(key)
        return json.loads(raw) if raw is not None else None

    def parsed(raw: Mapping[Any, Any]) -> dict[str, Any]:
        return {str(k): json.loads(value) for k, value in raw.items()}

    def mapping(key: str) -> dict[str, Any]:
        return parsed(client.hgetall(key))

    return ModelBundle(
        version=v, card=text(keys.model_card(v)), topn=read_per_customer(client, keys, v, "topn"),
        popular=text(keys.model_popular(v)), rules=mapping(keys.model_rules(v)),
        category_rules=text(keys.model_category_rules(v)),
        segments=parsed(read_per_customer(client, keys, v, "segments")),
        segment_summary=text(keys.model_segment_summary(v)), products=mapping(keys.model_products(v)),
        offers=mapping(keys.model_segment_offers(v)), cut_points=text(keys.model_rfm_cut_points(v)),
        cohorts=mapping(keys.model_cohorts(v)), cycles=read_per_customer(client, keys, v, "cycles"),
    )


def scaled(base: ModelBundle, version: str, customers: int, products: int, seed: int) -> ModelBundle:
    """`base` grown to `customers` and `products` by repeating its own entries under new ids."""
    rng = random.Random(seed)

    def grow(entries: dict[str, Any], size: int, prefix: str) -> dict[str, Any]:
        values = list(entries.values())
        extra = {f"{prefix}{i}": rng.choice(values) for i in range(max(size - len(entries), 0))} if values else {}
        return entries | extra

    rules_share = len(base.rules) / max(len(base.products), 1)
    cycles_share = len(base.cycles) / max(len(base.topn), 1)
    return replace(
        base, version=version, card=base.card | {"version": version},
        topn=grow(base.topn, customers, "bench-c"), segments=grow(base.segments, customers, "bench-c"),
        products=grow(base.products, products, "bench-p"), rules=grow(base.rules, int(products * rules_share),
                                                                      "bench-p"),
        cycles=grow(base.cycles, int(customers * cycles_share), "bench-c"),
    )


def wait_for_background_writes(nodes: list[redis.Redis]) -> None:
    """Until no Redis node has a snapshot or append-only rewrite running (each phase starts from the same quiet)."""
    while True:
        infos = [node.info("persistence") for node in nodes]
        if not any(info["rdb_bgsave_in_progress"] or info["aof_rewrite_in_progress"] or info["aof_rewrite_scheduled"]
                   for info in infos):
            return
        time.sleep(0.5)


class Sampler:
    """Every SAMPLE_S seconds, in a thread: which nodes run a background rewrite or snapshot, and the CPU seconds
    so far of each watched process (by pid, its descendants included) and of this one (the publisher)."""

    def __init__(self, nodes: list[redis.Redis], pids: dict[str, int]) -> None:
        self.nodes, self.pids = nodes, pids
        self.rows: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_S):
            infos = [node.info("persistence") for node in self.nodes]
            self.rows.append({
                "t": time.time(),
                "background": [int(bool(i["aof_rewrite_in_progress"] or i["rdb_bgsave_in_progress"])) for i in infos],
                "cpu": {name: process_cpu(pid) for name, pid in self.pids.items()}
                | {"publisher": {os.getpid(): time.process_time()}},
            })


def seconds_of(timeline: list[list[Any]], samples: list[dict[str, Any]], start: float, end: float
               ) -> list[dict[str, Any]]:
    """Second by second from `start`: the requests due (p99 ms, count, 5xx), the CPU each process used (cores, by
    the pids' deltas between samples) and how many Redis nodes ran a background write at some point."""
    out = []
    for second in range(int(end - start) + 1):
        lo, hi = start + second, start + second + 1
        latencies = [row[1] for row in timeline if lo <= row[0] < hi and row[1] is not None]
        statuses = [row[2] for row in timeline if lo <= row[0] < hi]
        inside = [(a, b) for a, b in itertools.pairwise(samples) if lo <= b["t"] < hi]
        cores: Counter[str] = Counter()
        for a, b in inside:
            for name, now in b["cpu"].items():
                cores[name] += sum(cpu - a["cpu"][name].get(pid, 0.0) for pid, cpu in now.items())
        background = [max(column) for column in zip(*(b["background"] for _, b in inside), strict=True)]
        out.append({"second": second, "requests": len(statuses), "5xx": sum(s >= 500 for s in statuses),
                    "p99_ms": 1000 * percentile(latencies, 99) if latencies else None,
                    "cores": {name: round(c, 3) for name, c in cores.items()},
                    "nodes_in_background_write": sum(background)})
    return out


def plot_timelines(report: dict[str, Any], path: Path) -> None:
    """Per publish: p99 per second (the background writes shaded), and the CPU of each process beneath it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    phases = [name for name in ("unpaced", "paced") if name in report]
    fig, axes = plt.subplots(2, len(phases), figsize=(7 * len(phases), 7), sharex="col", squeeze=False)
    for column, name in enumerate(phases):
        rows = report[name]["timeline"]
        seconds = [row["second"] for row in rows]
        top, bottom = axes[0][column], axes[1][column]
        top.plot(seconds, [row["p99_ms"] for row in rows], marker=".", label="/recommend p99")
        top.axhline(TARGET_P99_RATIO * report["before"]["p99_ms"], color="red", linestyle="--",
                    label=f"{TARGET_P99_RATIO:g}x p99 before")
        top.axvline(report[name]["publish_s"], color="black", linewidth=0.8, label="publish ends")
        for row in rows:
            if row["nodes_in_background_write"]:
                top.axvspan(row["second"], row["second"] + 1, color="orange",
                            alpha=0.15 * row["nodes_in_background_write"], linewidth=0)
        top.set_yscale("log")
        top.set_ylabel("p99 ms (orange: nodes rewriting)")
        top.set_title(f"{name} publish ({report['redis']} Redis)")
        top.legend(fontsize="small")
        names = sorted({n for row in rows for n in row["cores"]})
        bottom.stackplot(seconds, [[row["cores"].get(n, 0.0) for row in rows] for n in names], labels=names)
        bottom.set_ylabel("CPU, cores")
        bottom.set_xlabel("seconds since the publish started")
        bottom.legend(fontsize="small", loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def load(port: int, rate: float, seconds: float, ids: Path, timeline: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "benchmarks.open_loop", f"http://127.0.0.1:{port}/recommend?customer_id=CUSTOMER&k={K}",
         "--rate", str(rate), "--seconds", str(seconds), "--ids", str(ids), "--timeline", str(timeline)],
        stdout=subprocess.PIPE, text=True)


def window(timeline: list[list[Any]], start: float, end: float) -> dict[str, Any]:
    """The requests due in [start, end]."""
    rows = [row for row in timeline if start <= row[0] <= end]
    latencies = [row[1] for row in rows if row[1] is not None]
    statuses = Counter(row[2] for row in rows)
    return {
        "requests": len(rows), "seconds": end - start, "errors": statuses.pop(0, 0),
        "5xx": sum(n for status, n in statuses.items() if status >= 500), "statuses": dict(statuses),
        "p50_ms": 1000 * percentile(latencies, 50), "p99_ms": 1000 * percentile(latencies, 99),
        "max_ms": 1000 * max(latencies, default=float("nan")),
    }


def quiet(port: int, rate: float, seconds: float, ids: Path, work: Path) -> dict[str, Any]:
    timeline_file = work / "quiet.json"
    started = time.time()
    load(port, rate, seconds, ids, timeline_file).communicate()
    return window(json.loads(timeline_file.read_text()), started + 1, time.time())


def during_publish(client: SyncRedis, keys: KeyLayout, bundle: ModelBundle, options: Publishing, port: int,
                   rate: float, seconds: float, ids: Path, work: Path, nodes: list[redis.Redis],
                   pids: dict[str, int]) -> dict[str, Any]:
    timeline_file = work / f"{bundle.version}.json"
    loader = load(port, rate, seconds, ids, timeline_file)
    time.sleep(3)  # the load is steady before the publish starts
    with Sampler(nodes, pids | {"load": loader.pid}) as sampler:
        start = time.time()
        result = publish(client, keys, bundle, options, on_progress=publish_progress(say))
        end = time.time()
        loader.communicate()
    timeline = json.loads(timeline_file.read_text())
    if end + AFTER_S > max(row[0] for row in timeline):
        raise RuntimeError(f"the publish outlasted the load ({end - start:.0f} s): raise --load-seconds")
    return window(timeline, start, end) | {
        "after": window(timeline, end, end + AFTER_S), "publish_s": result.seconds,
        "timeline": seconds_of(timeline, sampler.rows, start, end + AFTER_S),
        "publish_mb": result.bytes / 1e6, "round_trips": result.round_trips,
        "mb_per_s_setting": options.bytes_per_s / 1e6,
    }


def print_table(report: dict[str, Any]) -> None:
    before = report["before"]
    print(f"\n/recommend at {report['rate']:,.0f} req/s (open loop, one API worker) while "
          f"{report['customers']:,} customers x {report['products']:,} products are published")
    print("| phase | publish | requests | 5xx | errors | p50 ms | p99 ms | max ms | p99 / before |")
    print("|---|---|---|---|---|---|---|---|---|")
    rows = [("before", before)]
    for name in ("unpaced", "paced"):
        rows += [(name, report[name]), (f"{name}: {AFTER_S:g} s after", report[name]["after"])]
    for name, row in rows:
        publish_cell = (f"{row['publish_mb']:,.0f} MB in {row['publish_s']:.1f} s" if "publish_s" in row else "—")
        ratio = row["p99_ms"] / before["p99_ms"]
        print(f"| {name} | {publish_cell} | {row['requests']:,} | {row['5xx']} | {row['errors']} | "
              f"{row['p50_ms']:.1f} | {row['p99_ms']:.1f} | {row['max_ms']:.0f} | {ratio:.2f}x |")
    paced = report["paced"]
    verdict = paced["5xx"] == 0 and paced["errors"] == 0 and paced["p99_ms"] <= TARGET_P99_RATIO * before["p99_ms"]
    print(f"\ntarget (paced): zero 5xx and p99 at most {TARGET_P99_RATIO:g}x before: {'met' if verdict else 'MISSED'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument("--quiet-seconds", type=float, default=20)
    parser.add_argument("--load-seconds", type=float, default=90, help="each publish's load; it must outlast it")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/publish_stall.json"))
    parser.add_argument("--redis-save", help="redis-server's snapshot rules (default: RECSYS_REDIS_SAVE's)")
    parser.add_argument("--cluster", action="store_true", help="a local Redis Cluster of three nodes")
    parser.add_argument("--work", type=Path, help="keep the stack, logs and timelines here (default: a temp folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="recsys-publish-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        persistence = {} if args.redis_save is None else {"redis_save": args.redis_save}
        settings: Settings = stack_settings(work / "run", key_prefix="bench", redis_cluster=args.cluster,
                                            **persistence)
        local = LocalStack(settings)
        local.up()
        ports = local.cluster_ports() if args.cluster else [settings.redis_port]
        nodes = [redis.Redis(host=settings.redis_host, port=port) for port in ports]
        server = None
        try:
            say("fitting the synthetic shop's model and writing its stream state ...")
            loaded = prepare_shop(settings, work)
            client = sync_client(settings)
            keys = KeyLayout(settings.key_prefix)
            base = published_bundle(settings, keys)
            ids = work / "ids.txt"
            shop_customers = sorted(loaded.lines["customer_id"].unique())
            ids.write_text("\n".join([*shop_customers, *(f"bench-c{i}" for i in range(len(shop_customers)))]))
            say(f"publishing a first shop-scale version ({args.customers:,} x {args.products:,}) unpaced ...")
            publish(client, keys, scaled(base, "v1", args.customers, args.products, 1), UNPACED)
            port = free_port()
            server = start_server("api.main:create_app", settings, port, 1, work / "api.log")
            report: dict[str, Any] = {"redis": "cluster" if args.cluster else "single",
                                      "customers": args.customers, "products": args.products, "rate": args.rate,
                                      "redis_save": settings.redis_save, "publish_mb_per_s": settings.publish_mb_per_s,
                                      "machine": platform.platform(), "cpus": os.cpu_count()}
            pids = {"api": server.pid} | {s.name: s.pid for s in local.status()
                                          if s.pid is not None and s.name.startswith("redis")}
            wait_for_background_writes(nodes)
            say("quiet period ...")
            report["before"] = quiet(port, args.rate, args.quiet_seconds, ids, work)
            for name, options, version in (("unpaced", UNPACED, "v2"),
                                           ("paced", Publishing.from_settings(settings), "v3")):
                wait_for_background_writes(nodes)
                say(f"publishing {version} {name} under load ...")
                bundle = scaled(base, version, args.customers, args.products, int(version[1:]))
                report[name] = during_publish(client, keys, bundle, options, port, args.rate, args.load_seconds,
                                              ids, work, nodes, pids)
            report["redis_used_memory_mib"] = sum(node.info("memory")["used_memory"] for node in nodes) / 2**20
            report["redis_latest_fork_ms"] = max(node.info("stats")["latest_fork_usec"] for node in nodes) / 1000
        finally:
            if server is not None:
                stop_server(server)
            local.down()
    print_table(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    plot_timelines(report, args.out.with_suffix(".png"))
    print(f"\nwrote {args.out} and {args.out.with_suffix('.png')}")


if __name__ == "__main__":
    main()

"""What parts of `/recommend`'s path cost, measured in one process without HTTP (CPU time per call, 32 concurrent
tasks on uvloop, the best of a few rounds), behind design choices in `api/`:

- the three reads of `read_context` (GET, ZREVRANGE WITHSCORES, HGET) through redis-py's asyncio pipeline and
  blocking pool, as the API had it, against the same commands on the API's shared connection
  (`api.adapters.redis_multiplex`);
- a FastAPI route in the first of nine routers reached through `include_router` (lazy in FastAPI 0.165) against
  the same routes added to the app directly, and the app's state through a dependency against straight from
  the request; each route answers a constant and takes `/recommend`'s two query parameters.

Prints a table and writes JSON. Starts its own redis-server (the local stack).

    .venv/bin/python -m benchmarks.hot_path_parts [--calls 20000] [--out benchmarks/results/hot_path_parts.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import tempfile
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
import uvloop
from fastapi import APIRouter, FastAPI, Request, Response

from api.adapters.redis_multiplex import MultiplexedRedis
from api.deps import CustomerIdQuery, State, TopK, state_of
from common.keys import KeyLayout
from stack import LocalStack
from stack.scratch import stack_settings

TASKS = 32
ROUNDS = 3
CUSTOMERS = [f"c{i}" for i in range(1000)]


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def cpu_us_per_call(call: Callable[[int], Awaitable[Any]], calls: int) -> float:
    """The best of ROUNDS: CPU microseconds per call with TASKS calls in flight."""
    best = float("inf")
    for _ in range(ROUNDS):
        done = 0

        async def worker(offset: int) -> None:
            nonlocal done
            while done < calls:
                done += 1
                await call(offset + done)

        await asyncio.gather(*(worker(i) for i in range(8)))  # warm
        done = 0
        started = cpu_s()
        await asyncio.gather(*(worker(i) for i in range(TASKS)))
        best = min(best, 1e6 * (cpu_s() - started) / done)
    return best


async def redis_reads(url: str, calls: int) -> dict[str, float]:
    keys = KeyLayout("hotpath")
    setup = aioredis.from_url(url)
    version = "v1"
    await setup.set(keys.model_current(), version)
    for customer in CUSTOMERS:
        await setup.zadd(keys.customer_recent(customer), {f"p{i}": 1.7e9 + i for i in range(10)})
        await setup.hset(keys.model_topn(version, customer), customer, ",".join(f"p{i}" for i in range(50)) + "|" +
                         ",".join("0.5" for _ in range(50)) + "|" + "r" * 50)
    await setup.aclose()

    pool = aioredis.BlockingConnectionPool.from_url(url, max_connections=200, timeout=1, socket_timeout=1,
                                                    socket_connect_timeout=1)
    client = aioredis.Redis(connection_pool=pool)

    async def through_redis_py(i: int) -> Any:
        customer = CUSTOMERS[i % len(CUSTOMERS)]
        pipe = client.pipeline(transaction=False)
        pipe.get(keys.model_current())
        pipe.zrevrange(keys.customer_recent(customer), 0, -1, withscores=True)
        pipe.hget(keys.model_topn(version, customer), customer)
        return await pipe.execute()

    shared = MultiplexedRedis(url, 1.0)

    async def through_shared_connection(i: int) -> Any:
        customer = CUSTOMERS[i % len(CUSTOMERS)]
        return await shared.execute(("GET", keys.model_current()),
                                    ("ZREVRANGE", keys.customer_recent(customer), "0", "-1", "WITHSCORES"),
                                    ("HGET", keys.model_topn(version, customer), customer))

    try:
        return {"redis-py pipeline, blocking pool": await cpu_us_per_call(through_redis_py, calls),
                "shared connection (api.adapters.redis_multiplex)":
                    await cpu_us_per_call(through_shared_connection, calls)}
    finally:
        await client.aclose(close_connection_pool=True)
        await shared.aclose()


ROUTERS = 9  # as many as the API has, the measured route in the first, as /recommend is


def routing_apps() -> tuple[FastAPI, FastAPI]:
    """Two apps with the same routers, one including them with `include_router`, one adding their routes."""
    body = b'{"items": []}'

    def routers() -> list[APIRouter]:
        made = []
        for n in range(ROUTERS):
            router = APIRouter(tags=[f"r{n}"])

            async def by_request(request: Request, customer_id: CustomerIdQuery, k: TopK = 5) -> Response:
                state_of(request)
                return Response(body, media_type="application/json")

            async def by_dependency(state: State, customer_id: CustomerIdQuery, k: TopK = 5) -> Response:
                return Response(body, media_type="application/json")

            router.add_api_route(f"/r{n}/request", by_request, methods=["GET"])
            router.add_api_route(f"/r{n}/dependency", by_dependency, methods=["GET"])
            router.add_api_route(f"/r{n}/{{item}}", by_request, methods=["GET"])
            made.append(router)
        return made

    included, direct = FastAPI(), FastAPI()
    for router in routers():
        included.include_router(router)
    for router in routers():
        direct.router.routes.extend(router.routes)
    for app in (included, direct):
        app.state.api = object()
    return included, direct


async def asgi_get(app: FastAPI, path: str, query: bytes) -> None:
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": query, "root_path": "",
             "headers": [(b"host", b"bench")], "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 2)}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start" and message["status"] != 200:
            raise RuntimeError(f"{path}: {message['status']}")

    await app(scope, receive, send)


async def routing(calls: int) -> dict[str, float]:
    included, direct = routing_apps()
    results = {}
    for label, app, path in (("route through include_router", included, "/r0/request"),
                             ("route added to the app directly", direct, "/r0/request"),
                             ("the same, state through a dependency", direct, "/r0/dependency")):
        async def call(i: int, app: FastAPI = app, path: str = path) -> None:
            await asgi_get(app, path, f"customer_id={CUSTOMERS[i % len(CUSTOMERS)]}&k=10".encode())
        results[label] = await cpu_us_per_call(call, calls)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/hot_path_parts.json"))
    args = parser.parse_args()
    settings = stack_settings(Path(tempfile.mkdtemp(prefix="bench-hot-")) / "run")
    local = LocalStack(settings)
    local.up()
    try:
        results = {"redis reads (3 commands)": uvloop.run(redis_reads(settings.redis_url, args.calls)),
                   "fastapi (2 query parameters)": uvloop.run(routing(args.calls))}
    finally:
        local.down()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"tasks": TASKS, "calls": args.calls, "cpu_us_per_call": results}, indent=2))
    print(f"\n{'part':<60} {'CPU us per call':>16}")
    for group, rows in results.items():
        print(group)
        for label, us in rows.items():
            print(f"  {label:<58} {us:>16.1f}")
    print(f"JSON: {args.out}")


if __name__ == "__main__":
    main()

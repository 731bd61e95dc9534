"""One script over many calls, each within one slot: on a single Redis, one pipeline (one round trip); on a Redis
Cluster, whose pipelines cannot carry EVALSHA (redis-py refuses it there), concurrent calls, at most IN_FLIGHT at
a time, which the cluster client routes by slot and, after a node restarted, loads the script again for."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis

from common.redis_clients import AsyncRedis
from stream_app.apply import pipeline_answers

IN_FLIGHT = 64
Call = tuple[Sequence[str], Sequence[str | int]]  # KEYS and ARGV


async def call_each(client: AsyncRedis, script: Any, calls: Sequence[Call]) -> list[Any]:
    """Every call's answer, in order. The first error is raised once every call has answered, so none is still
    in flight when the caller retries."""
    if not calls:
        return []
    if isinstance(client, aioredis.RedisCluster):
        gate = asyncio.Semaphore(IN_FLIGHT)

        async def one(call: Call) -> Any:
            async with gate:
                return await script(keys=call[0], args=call[1])

        results = await asyncio.gather(*(one(call) for call in calls), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return results
    pipe = client.pipeline(transaction=False)
    for call_keys, args in calls:
        await script(keys=call_keys, args=args, client=pipe)  # queued: a pipeline answers itself
    return await pipeline_answers(pipe)

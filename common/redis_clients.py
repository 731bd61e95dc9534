"""The Redis clients every process makes from the settings: one Redis, or with RECSYS_REDIS_CLUSTER a Redis
Cluster client seeded from RECSYS_REDIS_URL (any node: it learns the others and the slots from it, and follows
MOVED and ASK answers as slots move)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeAlias

import redis
import redis.asyncio as aioredis
from redis.exceptions import ClusterDownError

from common.settings import Settings

AsyncRedis: TypeAlias = aioredis.Redis | aioredis.RedisCluster
SyncRedis: TypeAlias = redis.Redis | redis.RedisCluster


def async_client(settings: Settings, **options: Any) -> AsyncRedis:
    if settings.redis_cluster:
        return aioredis.RedisCluster.from_url(settings.redis_url, **options)
    return aioredis.from_url(settings.redis_url, **options)


def sync_client(settings: Settings, **options: Any) -> SyncRedis:
    if settings.redis_cluster:
        return redis.RedisCluster.from_url(settings.redis_url, **options)
    return redis.Redis.from_url(settings.redis_url, **options)


@asynccontextmanager
async def node_of(client: AsyncRedis, key: str) -> AsyncIterator[aioredis.Redis]:
    """A plain client to the node that holds `key`, for a WATCH/MULTI transaction on keys of its slot: redis-py's
    asyncio cluster pipeline runs a transaction's commands with `asyncio.run` in a thread of its own, and the
    connections it opens there break the caller's event loop ("attached to a different loop"). On one Redis this
    is the client itself. If the slot moves meanwhile, the node answers MOVED and the transaction fails whole."""
    if not isinstance(client, aioredis.RedisCluster):
        yield client
        return
    await client.initialize()
    node = client.get_node_from_key(key)
    if node is None:
        raise ClusterDownError(f"no node holds the slot of {key!r}")
    pool = aioredis.ConnectionPool(connection_class=node.connection_class, max_connections=1,
                                   **node.connection_kwargs)
    plain = aioredis.Redis(connection_pool=pool)
    try:
        yield plain
    finally:
        await plain.aclose(close_connection_pool=True)

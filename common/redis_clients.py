"""The Redis clients every process makes from the settings: one Redis, or with RECSYS_REDIS_CLUSTER a Redis
Cluster client seeded from RECSYS_REDIS_URL (any node: it learns the others and the slots from it, and follows
MOVED and ASK answers as slots move)."""

from __future__ import annotations

from typing import Any, TypeAlias

import redis
import redis.asyncio as aioredis

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

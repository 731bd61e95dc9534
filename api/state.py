"""What the API talks to, created once in the lifespan and reached through `api.deps`."""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from api.adapters.exposures import ExposurePublisher
from api.adapters.purchases import PurchaseProducer
from api.adapters.redis_cluster_multiplex import ClusterMultiplexedRedis
from api.adapters.redis_multiplex import MultiplexedRedis
from api.live_plan import LivePlan
from api.metrics import Metrics
from api.model_cache import ModelCache
from api.services.bandit import Reweigher
from common.keys import KeyLayout, slot_tag
from common.redis_clients import AsyncRedis, async_client
from common.settings import Settings
from experiments.plan import default_plan


@dataclass
class ApiState:
    settings: Settings
    redis: AsyncRedis
    # the hot path's reads (`/recommend`): one connection shared by all requests (per node on a cluster)
    redis_mux: MultiplexedRedis | ClusterMultiplexedRedis
    keys: KeyLayout
    models: ModelCache
    exposures: ExposurePublisher
    metrics: Metrics
    purchases: PurchaseProducer
    plans: LivePlan
    bandits: Reweigher


def create_state(settings: Settings) -> ApiState:
    slot_tag(0)  # the slot tags' table (about 0.3 s, once), now rather than in the first request
    client = _client(settings)
    keys = KeyLayout(settings.key_prefix)
    mux = ClusterMultiplexedRedis if settings.redis_cluster else MultiplexedRedis
    return ApiState(
        settings=settings, redis=client, keys=keys,
        redis_mux=mux(settings.redis_url, settings.api_redis_timeout_s),
        models=ModelCache(client, keys, settings.api_model_check_s,
                          catalogue_check_s=settings.api_catalogue_check_s),
        exposures=ExposurePublisher(settings.bootstrap_servers, settings.topic_exposures,
                                    settings.api_exposure_queue_max),
        metrics=Metrics(),
        purchases=PurchaseProducer(settings.bootstrap_servers, settings.topic_purchases,
                                   settings.api_ingest_timeout_s),
        plans=LivePlan(default_plan(settings)),
        bandits=Reweigher(client, keys),
    )


def _client(settings: Settings) -> AsyncRedis:
    timeouts = {"socket_timeout": settings.api_redis_timeout_s, "socket_connect_timeout": settings.api_redis_timeout_s}
    if settings.redis_cluster:
        return async_client(settings, max_connections=settings.api_redis_pool_size, **timeouts)
    # A blocking pool: at high concurrency a request waits for a connection instead of failing with
    # "Too many connections" (measured as HTTP 500s at c=128 with the default pool).
    pool = aioredis.BlockingConnectionPool.from_url(
        settings.redis_url, max_connections=settings.api_redis_pool_size, timeout=settings.api_redis_timeout_s,
        **timeouts)
    return aioredis.Redis(connection_pool=pool)


async def close_state(state: ApiState) -> None:
    await state.redis_mux.aclose()
    if isinstance(state.redis, aioredis.RedisCluster):
        await state.redis.aclose()
    else:
        await state.redis.aclose(close_connection_pool=True)

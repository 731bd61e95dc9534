"""Redis's memory against its `maxmemory`: with `noeviction` a full Redis refuses writes (the stream stalls
until there is room), so the API shows how full it is before that happens."""

from __future__ import annotations

from typing import cast

from redis.exceptions import RedisError

from api.schemas import RedisMemory
from api.state import ApiState

WARN_AT = 0.8  # the share of maxmemory at which the UI warns


async def redis_memory(state: ApiState) -> RedisMemory:
    info = cast(dict[str, object], await state.redis.info("memory"))
    used, limit = int(cast(int, info["used_memory"])), int(cast(int, info.get("maxmemory", 0)))
    share = used / limit if limit else None
    return RedisMemory(used_bytes=used, max_bytes=limit or None, share=share,
                       warning=share is not None and share >= WARN_AT, policy=str(info.get("maxmemory_policy", "")))


async def redis_memory_if_up(state: ApiState) -> RedisMemory | None:
    """The reading, or None while Redis is away."""
    try:
        return await redis_memory(state)
    except (RedisError, OSError):
        return None

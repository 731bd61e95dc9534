"""The bodies of the app's 503s, shared by its exception handlers (api.main) and `/recommend`'s lane."""

from __future__ import annotations

import logging

from redis.exceptions import RedisError

from api.services.recommend import NoModelError

log = logging.getLogger(__name__)


def redis_unavailable(exc: RedisError) -> dict[str, str]:
    log.warning("Redis error: %s", exc)
    return {"detail": f"Redis unavailable: {type(exc).__name__}"}


def no_model(exc: NoModelError) -> dict[str, str]:
    return {"detail": str(exc)}

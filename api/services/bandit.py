"""Re-weighting a bandit's split when its interval has passed: each arm's posterior chance of converting best
from the stream's counts, guarded by the plan's minimum share (`experiments.bandit`). Done in the background by
whichever API process first serves a request after the interval ends; the write is a MULTI that WATCHes the live
plan, so the other processes' attempts find the work done and change nothing."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from dataclasses import dataclass, field

import numpy as np
from redis.exceptions import RedisError, WatchError

from common.keys import KeyLayout
from common.redis_clients import AsyncRedis, node_of
from experiments.bandit import thompson_shares
from experiments.plan import Plan

log = logging.getLogger(__name__)


def weights_entry(interval: int, at: float, shares: list[int], exposed: list[int], converted: list[int]) -> str:
    """One line of a bandit's history (`KeyLayout.ab_bandit_weights`)."""
    return json.dumps({"interval": interval, "at": at, "shares": shares, "exposed": exposed, "converted": converted})


async def reweigh(client: AsyncRedis, keys: KeyLayout, name: str, now: float) -> Plan | None:
    """The live plan with the split of the interval at `now`, written; None when there was nothing to do (another
    process did it, the experiment stopped, or the interval has not passed)."""
    async with node_of(client, keys.ab_live_plan()) as node, node.pipeline(transaction=True) as pipe:
        try:
            await pipe.watch(keys.ab_live_plan())
            raw = await pipe.get(keys.ab_live_plan())
            live = Plan.model_validate_json(raw) if raw is not None else None
            if live is None or live.name != name or live.bandit is None:
                return None
            interval = live.interval_at(now)
            if interval <= live.bandit.interval:
                return None
            counts = [await pipe.hmget(keys.ab_group_counters(name, arm), "exposed_customers", "converted_customers")
                      for arm in live.arm_names]
            exposed = [int(e or 0) for e, _ in counts]
            converted = [int(c or 0) for _, c in counts]
            seed = int.from_bytes(hashlib.blake2b(f"{name}:{interval}".encode(), digest_size=8).digest(), "big")
            shares = thompson_shares(converted, exposed, live.bandit.min_share, np.random.default_rng(seed))
            new = live.model_copy(update={"split": shares,
                                          "bandit": live.bandit.model_copy(update={"interval": interval})})
            encoded = new.model_dump_json()
            pipe.multi()  # type: ignore[no-untyped-call]
            pipe.set(keys.ab_live_plan(), encoded)
            pipe.hset(keys.ab_plans(), name, encoded)
            pipe.rpush(keys.ab_bandit_weights(name), weights_entry(interval, now, shares, exposed, converted))
            await pipe.execute()
            return new
        except WatchError:
            return None


@dataclass
class Reweigher:
    """Starts a re-weight when a served plan's interval has passed, at most one at a time per process."""

    client: AsyncRedis
    keys: KeyLayout
    running: asyncio.Task[Plan | None] | None = field(default=None)

    def observe(self, plan: Plan, now: float | None = None) -> None:
        assert plan.bandit is not None
        if plan.interval_at(now or time.time()) <= plan.bandit.interval:
            return
        if self.running is None or self.running.done():
            self.running = asyncio.create_task(self._reweigh(plan.name))

    async def _reweigh(self, name: str) -> Plan | None:
        try:
            return await reweigh(self.client, self.keys, name, time.time())
        except Exception as exc:
            log.warning("re-weighting bandit %s failed: %s", name, exc, exc_info=not isinstance(exc, RedisError))
            return None

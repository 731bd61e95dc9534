"""The published model's small, immutable parts, cached per version; the `current` pointer is re-read at most
every `check_s` seconds, piggybacked on a request's own round trip."""

from __future__ import annotations

import json
import time
from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis

from common.keys import KeyLayout


@dataclass
class ModelView:
    version: str
    data_end_ts: float  # the model has seen purchases up to here (epoch seconds)
    trend_days: float
    popular: list[dict[str, Any]]
    products: dict[str, dict[str, Any]]
    # Rules per antecedent product, filled on first use: a version never changes, so a product's rules are
    # read from Redis once per process and `/recommend` stays one round trip once warm.
    rules: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    all_rules: list[dict[str, Any]] | None = None  # every rule as a row, for /rules
    # What the hot path derives from this version alone (best-sellers per k, ranked and as answer items), made
    # once: nothing in a version changes. Shared between requests: never modified once stored.
    memo: dict[Hashable, Any] = field(default_factory=dict)


@dataclass
class ModelCache:
    client: aioredis.Redis
    keys: KeyLayout
    check_s: float
    view: ModelView | None = None
    checked_at: float = field(default=-1e18)

    def fresh(self) -> bool:
        return self.view is not None and time.monotonic() - self.checked_at < self.check_s

    async def observe(self, version: str | None) -> ModelView | None:
        """Called with the `current` value a request read; loads a version the first time it is seen."""
        self.checked_at = time.monotonic()
        if version is None:
            self.view = None
        elif self.view is None or self.view.version != version:
            self.view = await self._load(version)
        return self.view

    async def get(self) -> ModelView | None:
        if self.fresh():
            return self.view
        raw = await self.client.get(self.keys.model_current())
        return await self.observe(raw.decode() if isinstance(raw, bytes) else raw)

    async def _load(self, version: str) -> ModelView:
        pipe = self.client.pipeline(transaction=False)
        pipe.get(self.keys.model_card(version))
        pipe.get(self.keys.model_popular(version))
        pipe.hgetall(self.keys.model_products(version))
        card_raw, popular_raw, products_raw = await pipe.execute()
        card = json.loads(card_raw or "{}")
        end = card.get("data_window", {}).get("end")
        return ModelView(
            version=version,
            data_end_ts=_epoch(end),
            trend_days=float(card.get("params", {}).get("trend", {}).get("window_days") or 30),
            popular=json.loads(popular_raw or "[]"),
            products={k.decode(): json.loads(v) for k, v in (products_raw or {}).items()},
        )


def _epoch(text: str | None) -> float:
    if not text:
        return 0.0
    parsed = datetime.fromisoformat(text)
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()

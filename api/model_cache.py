"""The published model's small, immutable parts, cached per version; the `current` pointer is re-read at most every
`check_s` seconds, piggybacked on a request's own round trip. A newly published version is loaded in the background,
its product names a chunk at a time between requests, while requests keep being answered from the version before it:
at shop scale (100k products) loading it in one go held the worker for most of a second. Product names and
categories come from the version's products hash overlaid with the live catalogue (the products topic), which wins:
the catalogue is re-read when its revision counter moved, checked at most every `catalogue_check_s` seconds."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Hashable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from redis.exceptions import RedisError

from api.ranking import RuleBoosts
from common.keys import KeyLayout
from common.redis_clients import AsyncRedis
from common.segments import CutPoints
from experiments.plan import MAX_ARMS

MAX_PINNED = MAX_ARMS  # every version a plan's arms can pin
PRODUCTS_PER_CHUNK = 1000
RETRY_S = 1.0
log = logging.getLogger(__name__)


class ProductNames(Mapping[str, dict[str, Any]]):
    """A version's product names and categories, kept as the JSON Redis holds and parsed on first use (an answer
    names a few of a catalogue's 100k products), overlaid with the live catalogue, which wins."""

    __slots__ = ("_catalogue", "_parsed", "_published")

    def __init__(self, published: Mapping[str, bytes], catalogue: Mapping[str, dict[str, Any]]) -> None:
        self._published, self._catalogue = published, catalogue
        self._parsed: dict[str, dict[str, Any]] = {}

    def __getitem__(self, product_id: str) -> dict[str, Any]:
        if product_id in self._catalogue:
            return self._catalogue[product_id]
        parsed = self._parsed.get(product_id)
        if parsed is None:
            parsed = self._parsed[product_id] = json.loads(self._published[product_id])
        return parsed

    def __iter__(self) -> Iterator[str]:
        yield from self._catalogue
        yield from (product_id for product_id in self._published if product_id not in self._catalogue)

    def __len__(self) -> int:
        return len(self._catalogue) + sum(1 for product_id in self._published if product_id not in self._catalogue)


@dataclass
class ModelView:
    version: str
    data_end_ts: float  # the model has seen purchases up to here (epoch seconds)
    trend_days: float
    popular: list[dict[str, Any]]
    products: Mapping[str, dict[str, Any]]  # the version's own names overlaid with the live catalogue
    published_products: dict[str, bytes] = field(default_factory=dict)  # as JSON
    cut_points: CutPoints | None = None  # the RFM quintile edges of the version's segments
    cohorts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # cohort key -> best-sellers
    # Rules per antecedent product, filled on first use: a version never changes, so a product's rules are
    # read from Redis once per process and `/recommend` stays one round trip once warm.
    rules: dict[str, RuleBoosts] = field(default_factory=dict)
    all_rules: list[dict[str, Any]] | None = None  # every rule as a row, for /rules
    # What the hot path derives from the version and its product names (best-sellers per k as answer items), made
    # once and shared between requests (never modified once stored); emptied when the names change.
    memo: dict[Hashable, Any] = field(default_factory=dict)

    def name_products(self, catalogue: dict[str, dict[str, Any]]) -> None:
        """The version's own product names and categories overlaid with the live catalogue, which wins."""
        self.products = ProductNames(self.published_products, catalogue)
        self.memo.clear()


@dataclass
class ModelCache:
    client: AsyncRedis
    keys: KeyLayout
    check_s: float
    view: ModelView | None = None
    checked_at: float = field(default=-1e18)
    catalogue_check_s: float = 5.0
    catalogue: dict[str, dict[str, Any]] = field(default_factory=dict)
    catalogue_revision: bytes | None = None
    catalogue_checked_at: float = field(default=-1e18)
    # Versions an experiment's arm serves whatever is current, loaded on first use (a version never changes).
    pinned: dict[str, ModelView] = field(default_factory=dict)
    wanted: str | None = None  # the version `current` named when last read
    switching: asyncio.Task[None] | None = None  # loading a version `current` named, in the background
    # One load per version however many requests want it meanwhile; a version whose load failed is tried again
    # no sooner than RETRY_S later.
    loads: dict[str, asyncio.Task[ModelView]] = field(default_factory=dict)
    failed_at: dict[str, float] = field(default_factory=dict)

    def fresh(self) -> bool:
        return self.view is not None and time.monotonic() - self.checked_at < self.check_s

    async def observe(self, version: str | None) -> ModelView | None:
        """Called with the `current` value a request read; loads a version the first time it is seen."""
        self.checked_at = time.monotonic()
        self.wanted = version
        if version is None:
            self.view = None
        elif self.view is None:  # nothing to answer from meanwhile
            view = await self._shared_load(version)
            if self.view is None or self.wanted == version:
                self.view = view
        elif self.view.version != version:
            if version in self.pinned:  # loaded already, for an experiment's arm (a promotion): no wait
                self.view = self.pinned[version]
            elif (self.switching is None or self.switching.done()) and (
                    self.checked_at - self.failed_at.get(version, -RETRY_S) >= RETRY_S):
                self.switching = asyncio.create_task(self._switch(version))
        if self.checked_at - self.catalogue_checked_at >= self.catalogue_check_s:
            await self._refresh_catalogue()
        return self.view

    async def _switch(self, version: str) -> None:
        try:
            view = await self._shared_load(version)
        except Exception as exc:  # a request that sees the pointer after RETRY_S tries again
            self.failed_at[version] = time.monotonic()
            log.warning("loading model version %s failed: %s", version, exc, exc_info=not isinstance(exc, RedisError))
            return
        if self.wanted == version:  # not if the pointer moved on (or back) meanwhile
            self.view = view

    async def at_version(self, version: str) -> ModelView:
        """A version's view, the current one's or a pinned one's; pinned ones beyond the newest few are dropped."""
        if self.view is not None and self.view.version == version:
            return self.view
        if version not in self.pinned:
            view = await self._shared_load(version)
            if version not in self.pinned:
                if len(self.pinned) >= MAX_PINNED:
                    self.pinned.pop(next(iter(self.pinned)))
                self.pinned[version] = view
        return self.pinned[version]

    async def _shared_load(self, version: str) -> ModelView:
        task = self.loads.get(version)
        if task is None:
            task = self.loads[version] = asyncio.create_task(self._load(version))
            task.add_done_callback(lambda done: self._forget_load(version, done))
        view = await asyncio.shield(task)  # a request that gives up does not cancel the others' load
        view.name_products(self.catalogue)  # as the catalogue is now, whenever the load finished
        return view

    def _forget_load(self, version: str, task: asyncio.Task[ModelView]) -> None:
        del self.loads[version]
        if not task.cancelled():
            task.exception()  # retrieved here too: every request that awaited it may have given up

    def products(self) -> Mapping[str, dict[str, Any]]:
        """Names and categories by product id: the current version's overlaid with the live catalogue, or the
        live catalogue alone before any model is published."""
        return self.view.products if self.view is not None else self.catalogue

    async def _refresh_catalogue(self) -> None:
        self.catalogue_checked_at = time.monotonic()
        revision = await self.client.get(self.keys.product_catalogue_revision())
        if revision == self.catalogue_revision:
            return
        raw = cast(dict[bytes, bytes], await self.client.hgetall(self.keys.product_catalogue()))
        self.catalogue = {k.decode(): json.loads(v) for k, v in raw.items()}
        self.catalogue_revision = cast(bytes | None, revision)
        for view in [self.view, *self.pinned.values()]:
            if view is not None:
                view.name_products(self.catalogue)

    async def get(self) -> ModelView | None:
        if self.fresh():
            return self.view
        raw = await self.client.get(self.keys.model_current())
        return await self.observe(raw.decode() if isinstance(raw, bytes) else raw)

    async def _load(self, version: str) -> ModelView:
        pipe = self.client.pipeline(transaction=False)
        pipe.get(self.keys.model_card(version))
        pipe.get(self.keys.model_popular(version))
        pipe.get(self.keys.model_rfm_cut_points(version))
        pipe.hgetall(self.keys.model_cohorts(version))
        card_raw, popular_raw, cuts_raw, cohorts_raw = await pipe.execute()
        card = json.loads(card_raw or "{}")
        end = card.get("data_window", {}).get("end")
        products = await self._products(version)
        return ModelView(
            version=version,
            data_end_ts=_epoch(end),
            trend_days=float(card.get("params", {}).get("trend", {}).get("window_days") or 30),
            popular=json.loads(popular_raw or "[]"),
            products=ProductNames(products, {}),
            published_products=products,
            cut_points=CutPoints.from_dict(json.loads(cuts_raw)) if cuts_raw else None,
            cohorts={k.decode(): json.loads(v) for k, v in (cohorts_raw or {}).items()},
        )

    async def _products(self, version: str) -> dict[str, bytes]:
        """The version's products hash (JSON per product), read a chunk at a time, letting requests run between."""
        products: dict[str, bytes] = {}
        cursor = 0
        while True:
            cursor, chunk = await self.client.hscan(self.keys.model_products(version), cursor,
                                                    count=PRODUCTS_PER_CHUNK)
            products.update((k.decode(), v) for k, v in cast(dict[bytes, bytes], chunk).items())
            if cursor == 0:
                return products
            await asyncio.sleep(0)


def _epoch(text: str | None) -> float:
    if not text:
        return 0.0
    parsed = datetime.fromisoformat(text)
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()

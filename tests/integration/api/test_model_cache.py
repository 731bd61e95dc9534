"""A newly published version is loaded in the background on real Redis: requests keep the version before it until
the new one is whole, and a version that cannot be read leaves the old one serving."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from api.model_cache import PRODUCTS_PER_CHUNK, RETRY_S, ModelCache
from batch.publish import UNPACED, ModelBundle, publish
from tests.integration.conftest import Isolated

pytestmark = pytest.mark.integration

PRODUCTS = 7 * PRODUCTS_PER_CHUNK + 3  # several chunks, the last one short


def _bundle(version: str, products: int) -> ModelBundle:
    return ModelBundle(version=version, card={"version": version}, topn={}, popular=[], rules={},
                       category_rules=[], segments={}, segment_summary=[],
                       products={f"p{i}": {"name": f"{version} product {i}"} for i in range(products)})


def test_a_new_version_is_served_once_it_is_whole_and_the_old_one_until_then(isolated: Isolated) -> None:
    publish(isolated.redis, isolated.keys, _bundle("v1", 10), UNPACED)

    async def scenario() -> None:
        client = aioredis.from_url(isolated.settings.redis_url)
        cache = ModelCache(client, isolated.keys, check_s=0)
        try:
            first = await cache.observe("v1")  # nothing to serve yet: the first load is waited for
            assert first is not None and first.version == "v1" and len(first.products) == 10
            publish(isolated.redis, isolated.keys, _bundle("v2", PRODUCTS), UNPACED)
            meanwhile = await cache.observe("v2")
            assert meanwhile is first  # answered at once, from the version before
            assert cache.switching is not None
            await cache.switching
            now = await cache.observe("v2")
            assert now is not None and now.version == "v2" and cache.switching.done()
            assert len(now.products) == PRODUCTS
            assert now.products[f"p{PRODUCTS - 1}"] == {"name": f"v2 product {PRODUCTS - 1}"}
        finally:
            await client.aclose()

    asyncio.run(scenario())


def test_a_version_that_cannot_be_read_leaves_the_old_one_serving(isolated: Isolated,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    publish(isolated.redis, isolated.keys, _bundle("v1", 10), UNPACED)
    isolated.redis.set(isolated.keys.model_products("broken"), "not a hash")  # HSCAN answers WRONGTYPE

    async def scenario() -> None:
        client = aioredis.from_url(isolated.settings.redis_url)
        cache = ModelCache(client, isolated.keys, check_s=0)
        try:
            old = await cache.observe("v1")
            assert await cache.observe("broken") is old
            assert cache.switching is not None
            failed = cache.switching
            await failed
            assert await cache.observe("broken") is old and cache.switching is failed  # not again at once
            await asyncio.sleep(RETRY_S)
            assert await cache.observe("broken") is old  # tried again, still the old one
            assert cache.switching is not failed
            await cache.switching
        finally:
            await client.aclose()

    asyncio.run(scenario())
    assert [r.message for r in caplog.records].count(
        "loading model version broken failed: WRONGTYPE Operation against a key holding the wrong kind of value") == 2


def test_a_version_an_arm_already_serves_becomes_current_at_once(isolated: Isolated) -> None:
    publish(isolated.redis, isolated.keys, _bundle("v1", 10), UNPACED)
    publish(isolated.redis, isolated.keys, _bundle("v2", 20), UNPACED)

    async def scenario() -> None:
        client = aioredis.from_url(isolated.settings.redis_url)
        cache = ModelCache(client, isolated.keys, check_s=0)
        try:
            await cache.observe("v1")
            pinned = await cache.at_version("v2")  # an experiment's arm serves it
            assert await cache.observe("v2") is pinned and cache.switching is None  # a promotion: nothing to load
        finally:
            await client.aclose()

    asyncio.run(scenario())


def test_requests_share_one_load_and_a_pointer_that_moved_back_keeps_its_version(isolated: Isolated) -> None:
    publish(isolated.redis, isolated.keys, _bundle("v1", 10), UNPACED)
    publish(isolated.redis, isolated.keys, _bundle("v2", PRODUCTS), UNPACED)

    async def scenario() -> None:
        client = aioredis.from_url(isolated.settings.redis_url)
        cache = ModelCache(client, isolated.keys, check_s=0)
        try:
            first = await asyncio.gather(*(cache.observe("v1") for _ in range(20)))
            assert all(view is first[0] for view in first)  # one load, shared by the 20 requests
            pinned = await asyncio.gather(*(cache.at_version("v2") for _ in range(20)))
            assert all(view is pinned[0] for view in pinned) and cache.loads == {}
            cache.pinned.clear()
            assert await cache.observe("v2") is first[0]  # loading v2 in the background
            assert await cache.observe("v1") is first[0]  # the pointer went back meanwhile
            assert cache.switching is not None
            await cache.switching
            assert cache.view is first[0]  # the finished load of v2 does not replace the current v1
        finally:
            await client.aclose()

    asyncio.run(scenario())

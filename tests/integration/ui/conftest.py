"""The API running as a server (`recsys serve`) over a published model, live stream state and an experiment,
for the UI tests."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime, timedelta

import pandas as pd
import pytest
import redis.asyncio as aioredis

from common.assignment import group_of
from common.events import ExposureEvent
from producers.master_data import product_events, profile_events
from producers.replay import to_events
from stack.scratch import free_port, settings_env
from stack.system import wait_http
from stream_app.exposures import ExposureWriter
from stream_app.master_data import MasterDataWriter
from stream_app.state import StateWriter
from tests.integration.conftest import Published
from tests.integration.streamkit import RECSYS

UI_API_KEY = "ui-test-key-" + "u" * 32


async def _seed(published: Published) -> None:
    """What the stream would have written: every purchase, one visit before each customer's last order, the
    profiles and the catalogue."""
    settings = published.settings
    client = aioredis.from_url(settings.redis_url)
    events = list(to_events(published.lines))
    writer = StateWriter(client, published.keys)
    exposures = ExposureWriter(client, published.keys)
    last_orders = published.lines.drop_duplicates("customer_id", keep="last")
    visits = [
        ExposureEvent(request_id=f"seed-{row.customer_id}", customer_id=str(row.customer_id),
                      experiment=settings.ab_experiment, strategy="model", model_version=published.version,
                      group=group_of(settings.ab_salt, str(row.customer_id), settings.ab_treatment_percent),
                      product_ids=[str(row.product_id) if i % 3 else "never-bought"],
                      event_time=_utc(row.event_time) - timedelta(hours=1))
        for i, row in enumerate(last_orders.itertuples())
    ]
    await exposures.apply(visits)
    for start in range(0, len(events), 1000):
        await writer.apply(events[start:start + 1000])
    invalid: dict[str, int] = {}
    loaded = published.loaded
    master = MasterDataWriter(client, published.keys)
    await master.apply_profiles([(p.customer_id, p) for p in profile_events(loaded.customers, invalid)])
    assert loaded.products is not None
    await master.apply_products([(p.product_id, p) for p in product_events(loaded.products, invalid)])
    await writer.record_progress({"rate_eps": 123.0, "last_batch_at": round(time.time(), 3), "lag": 0})
    await client.aclose()


def _utc(value: object) -> datetime:
    return pd.Timestamp(value).tz_localize("UTC").to_pydatetime()  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def api_url(published: Published, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    asyncio.run(_seed(published))
    port = free_port()
    log = tmp_path_factory.mktemp("api") / "api.log"
    env = settings_env(published.settings)
    env["RECSYS_API_KEY"] = UI_API_KEY
    with log.open("wb") as out:
        server = subprocess.Popen([RECSYS, "serve", "--port", str(port)], env=env, stdout=out,
                                  stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        assert wait_http(f"{url}/ready", 60, alive=lambda: server.poll() is None), log.read_text()[-2000:]
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture
def ui_env(api_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The UI (run in-process by AppTest) pointed at the API; settings and the cached client reset."""
    import streamlit as st

    from common.settings import get_settings

    monkeypatch.setenv("RECSYS_UI_API_URL", api_url)
    monkeypatch.setenv("RECSYS_API_KEY", UI_API_KEY)  # the UI's keyed actions (behind its password)
    get_settings.cache_clear()
    st.cache_resource.clear()
    yield api_url
    get_settings.cache_clear()

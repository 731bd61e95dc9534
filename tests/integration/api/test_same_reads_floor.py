"""The benchmark's same-reads floor must make exactly the Redis reads `/recommend` makes, or comparing with it
means nothing: both are run against the real redis-server and what each sends is read back with MONITOR."""

from __future__ import annotations

import threading
import uuid

import pytest
import redis
from fastapi.testclient import TestClient

from benchmarks.floors.same_reads_app import PATH, create_app
from common.assignment import group_of
from tests.integration.conftest import Published

pytestmark = pytest.mark.integration


def _commands_sent(published: Published, call: TestClient, path: str, customer: str) -> list[tuple[str, ...]]:
    """The commands on this test's keys that Redis executed while `path` was answered."""
    seen: list[tuple[str, ...]] = []
    marker = f"end-{uuid.uuid4().hex}"
    monitor_client = redis.Redis.from_url(published.settings.redis_url, decode_responses=True)
    started = threading.Event()

    def watch() -> None:
        with monitor_client.monitor() as monitor:  # type: ignore[no-untyped-call]
            started.set()
            for entry in monitor.listen():
                if marker in entry["command"]:
                    return
                if published.keys.prefix in entry["command"]:
                    seen.append(tuple(entry["command"].split()))

    watcher = threading.Thread(target=watch)
    watcher.start()
    assert started.wait(5)  # MONITOR has answered OK: every later command reaches it
    assert call.get(path, params={"customer_id": customer, "k": 10}).status_code == 200
    published.redis.echo(marker)
    watcher.join(10)
    monitor_client.close()
    return seen


@pytest.mark.parametrize("group", ["treatment", "control"])
def test_the_same_reads_floor_reads_exactly_what_recommend_reads(published: Published, group: str) -> None:
    # Neither the model pointer's nor the live catalogue's periodic re-check falls between the two recordings.
    settings = published.settings.model_copy(update={"api_model_check_s": 3600, "api_catalogue_check_s": 3600})
    customer = next(c for c in sorted(published.lines["customer_id"].unique())
                    if group_of(settings.ab_salt, c, settings.ab_treatment_percent) == group)
    with TestClient(create_app(settings)) as app:
        for path in (PATH, "/recommend"):  # warm: the model version and its rules are cached after a first call
            app.get(path, params={"customer_id": customer, "k": 10})
        floor = _commands_sent(published, app, PATH, customer)
        served = _commands_sent(published, app, "/recommend", customer)
    assert floor == served
    # the pointer, the recent purchases, the running experiment's plan, the list
    assert [command[0] for command in served] == ["GET", "ZREVRANGE", "GET", "HGET"]

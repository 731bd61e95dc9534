"""POST /events/purchases on the real stack: posted purchases reach Redis through the stream exactly once (a retried
request counts nothing twice), a bad line is refused whole, and a broker outage is a 503 that loses nothing
already acknowledged."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import redis
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.main import create_app
from batch.source import read_topic
from common.keys import KeyLayout
from common.settings import Settings
from stack import LocalStack
from stack.scratch import stack_settings, start_worker, stop_worker
from tests.integration.conftest import Isolated
from tests.integration.streamkit import differences, history, wait_for

pytestmark = pytest.mark.integration
KEY = "ingest-test-key-" + "k" * 32
HEADERS = {"X-API-Key": KEY}


def as_posted(lines: pd.DataFrame) -> list[dict[str, Any]]:
    """Order lines as a checkout sends them: no event id, the line's number in its order."""
    rows: Any = lines.itertuples()
    return [{"order_id": r.order_id, "customer_id": r.customer_id, "product_id": r.product_id,
             "category": r.category, "units": int(r.units), "amount": float(r.amount),
             "event_time": r.event_time.isoformat() + "Z", "line_no": int(r.line_no)}
            for r in rows]


def post_until_accepted(api: TestClient, body: object, timeout_s: float = 60) -> dict[str, Any]:
    """The API's producer connects in the background: 503 until it has."""
    deadline = time.monotonic() + timeout_s
    while True:
        response = api.post("/events/purchases", json=body, headers=HEADERS)
        if response.status_code == 202 or time.monotonic() > deadline:
            assert response.status_code == 202, response.text
            accepted: dict[str, Any] = response.json()
            return accepted
        assert response.status_code == 503, response.text
        time.sleep(0.2)


def topic_records(settings: Settings) -> int:
    return asyncio.run(read_topic(settings, lambda _n: None, idle_s=1.0)).records


@pytest.fixture
def with_key(isolated: Isolated) -> Settings:
    return isolated.settings.model_copy(update={"api_key": SecretStr(KEY)})


def test_posted_purchases_are_applied_once_and_a_bad_request_sends_nothing(
    isolated: Isolated, with_key: Settings, tmp_path: Path,
) -> None:
    lines = history(tmp_path / "shop", customers=60, lines=900).head(1000)  # one request holds 1,000 at most
    body = as_posted(lines)
    worker = start_worker(with_key, tmp_path / "worker.log")
    try:
        with TestClient(create_app(with_key)) as api:
            assert api.post("/events/purchases", json=body[0]).status_code == 401
            assert api.post("/events/purchases", json=body[0], headers={"X-API-Key": "wrong"}).status_code == 401
            bad = api.post("/events/purchases", json=[*body[:5], body[5] | {"amount": -1}], headers=HEADERS)
            assert bad.status_code == 422
            assert bad.json()["detail"][0]["loc"] == ["body", 5, "amount"]

            accepted = post_until_accepted(api, body[:1])  # one purchase
            rest = post_until_accepted(api, body[1:])
            retried = post_until_accepted(api, body[1:])  # the client never saw the answer and sends it again
        assert rest["event_ids"] == retried["event_ids"] and rest["accepted"] == len(body) - 1
        assert len(set(accepted["event_ids"] + rest["event_ids"])) == len(body)
        counters = wait_for(isolated.redis, isolated.keys, processed=len(body), duplicates=len(body) - 1)
    finally:
        stop_worker(worker)
    assert (counters["processed"], counters["duplicates"]) == (len(body), len(body) - 1)
    assert differences(isolated.redis, isolated.keys, lines) == []
    assert topic_records(with_key) == 2 * len(body) - 1  # and nothing of the refused request


@pytest.fixture
def own_stack(tmp_path: Path) -> Iterator[tuple[Settings, LocalStack]]:
    settings = stack_settings(tmp_path / "run", api_key=SecretStr(KEY), api_ingest_timeout_s=1.5)
    local = LocalStack(settings)
    local.up()
    yield settings, local
    local.down()


def refused_quickly(api: TestClient, body: object, settings: Settings) -> None:
    started = time.monotonic()
    outage = api.post("/events/purchases", json=body, headers=HEADERS)
    assert outage.status_code == 503 and "retry" in outage.json()["detail"], outage.text
    assert time.monotonic() - started < settings.api_ingest_timeout_s + 1.0


def test_a_broker_outage_is_503_and_nothing_acknowledged_is_lost(
    own_stack: tuple[Settings, LocalStack], tmp_path: Path,
) -> None:
    settings, local = own_stack
    lines = history(tmp_path / "shop", customers=40, lines=450)
    body = as_posted(lines)
    quarter = len(body) // 4
    parts = [body[:quarter], body[quarter: 2 * quarter], body[2 * quarter: 3 * quarter], body[3 * quarter:]]
    client = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    keys = KeyLayout(settings.key_prefix)
    log = tmp_path / "worker.log"
    worker = start_worker(settings, log)
    try:
        with TestClient(create_app(settings)) as api:
            post_until_accepted(api, parts[0])
            wait_for(client, keys, processed=len(parts[0]))

            broker_pid = next(s.pid for s in local.status() if s.name == "broker")
            assert broker_pid is not None
            os.kill(broker_pid, signal.SIGSTOP)  # a broker that stops answering, its log intact
            try:
                refused_quickly(api, parts[1], settings)
            finally:
                os.kill(broker_pid, signal.SIGCONT)
            post_until_accepted(api, parts[1])
            wait_for(client, keys, processed=len(parts[0]) + len(parts[1]))

            # The local broker restarts with an empty log, so the worker is started again with it (a worker that
            # outlives it can commit its old offsets into the new log and wait past the new log's end).
            stop_worker(worker)
            assert local.down(only=["broker"]) == ["broker"]  # gone: connections refused
            refused_quickly(api, parts[2], settings)
            local.up()
            worker = start_worker(settings, log)
            post_until_accepted(api, parts[2])
            wait_for(client, keys, processed=len(body) - len(parts[3]))

            stop_worker(worker)  # restarted while no request was failing: the API never saw it go
            local.down(only=["broker"])
            local.up()
            worker = start_worker(settings, log)
            post_until_accepted(api, parts[3])
        counters = wait_for(client, keys, processed=len(body))
    finally:
        stop_worker(worker)
        client.close()
    assert counters["processed"] == len(body)
    assert differences(client, keys, lines) == []

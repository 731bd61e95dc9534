"""The batch job against the real broker and Redis: reading the topic, publishing versions atomically."""

from __future__ import annotations

import asyncio
import json
import subprocess
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from aiokafka import AIOKafkaProducer

from batch.models import Recommender
from batch.publish import ModelBundle, Publishing, current_version, publish, read_per_customer
from batch.source import from_topic
from common import toplist
from stack.scratch import settings_env
from tests.integration.conftest import Isolated
from tests.integration.streamkit import RECSYS, history, send

pytestmark = pytest.mark.integration


def _bundle(version: str, customers: int) -> ModelBundle:
    topn = {f"c{i}": toplist.encode([(f"p{i % 7}", 1.0, "repeat")]) for i in range(customers)}
    return ModelBundle(
        version=version, card={"version": version, "customers": customers}, topn=topn,
        popular=[{"product_id": "p1", "buyers": 3}], rules={"p1": [{"product_id": "p2", "confidence": 0.5}]},
        category_rules=[], segments={"c0": {"segment": "new"}}, segment_summary=[], products={"p1": {"name": "x"}},
    )


def test_readers_never_see_a_half_written_version(isolated: Isolated) -> None:
    client, keys = isolated.redis, isolated.keys
    publish(client, keys, _bundle("v1", 10))
    seen: list[tuple[str, int, int]] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            version = current_version(client, keys)
            assert version is not None
            card = json.loads(client.get(keys.model_card(version)) or "{}")
            seen.append((version, card.get("customers", -1), len(read_per_customer(client, keys, version, "topn"))))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        publish(client, keys, _bundle("v2", 30_000))
    finally:
        done.set()
        reader.join()
    assert {v for v, _, _ in seen} >= {"v1"}
    # whatever version a reader found current was complete: its card and all of its lists were there
    assert all(n == expected for _, expected, n in seen), [s for s in seen if s[1] != s[2]][:3]
    assert current_version(client, keys) == "v2"


def test_old_versions_are_pruned_and_versions_are_not_reused(isolated: Isolated) -> None:
    client, keys = isolated.redis, isolated.keys
    for version in ("v1", "v2", "v3", "v4"):
        result = publish(client, keys, _bundle(version, 5), Publishing(keep=2))
    assert result.pruned == ["v2"]
    assert client.zrange(keys.model_versions(), 0, -1) == ["v3", "v4"]
    assert not list(client.scan_iter(match=keys.model_pattern("v1")))
    assert not list(client.scan_iter(match=keys.model_pattern("v2")))
    assert len(read_per_customer(client, keys, "v3", "topn")) == 5
    with pytest.raises(ValueError, match="already published"):
        publish(client, keys, _bundle("v4", 5))


def test_training_data_read_from_the_topic_equals_the_file(isolated: Isolated, tmp_path: Path) -> None:
    lines = history(tmp_path, customers=200, lines=3000, seed=5)
    send(isolated.settings, lines)
    send(isolated.settings, lines.head(500))  # a partial replay: the same events again
    bad = [b"not json", b'{"schema_version": 9}', b'{"schema_version": 1}']
    asyncio.run(_produce_raw(isolated.settings.bootstrap_servers, isolated.settings.topic_purchases, bad))

    loaded = from_topic(isolated.settings, progress=lambda _n: None, idle_s=1.0)

    assert loaded.report.raw_rows == len(lines) + 500 + len(bad)
    assert loaded.report.removed["invalid_event"] == len(bad)
    assert loaded.report.removed["duplicate"] == 500
    key = ["order_id", "product_id", "units", "amount", "event_time"]
    expected = lines[key].sort_values(key).reset_index(drop=True)
    got = loaded.lines[key].sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)


async def _produce_raw(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, key=b"bad")
    finally:
        await producer.stop()


def test_batch_run_from_the_topic_publishes_a_model(isolated: Isolated, tmp_path: Path) -> None:
    lines = history(tmp_path / "data", customers=400, lines=8000, seed=9)
    send(isolated.settings, lines)
    env = settings_env(isolated.settings) | {"RECSYS_ARTIFACTS_DIR": str(tmp_path / "artifacts")}
    result = subprocess.run([RECSYS, "batch", "run"], env=env, cwd=tmp_path, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr

    client, keys = isolated.redis, isolated.keys
    version = current_version(client, keys)
    assert version is not None and f"current -> {version}" in result.stdout
    card = json.loads(client.get(keys.model_card(version)) or "{}")
    assert card["data"]["lines"] == len(lines)
    assert card["data"]["customers"] == lines["customer_id"].nunique()
    assert len(read_per_customer(client, keys, version, "topn")) == lines["customer_id"].nunique()
    assert len(read_per_customer(client, keys, version, "segments")) == lines["customer_id"].nunique()
    customer = str(lines["customer_id"].iloc[0])
    top = toplist.decode(client.hget(keys.model_topn(version, customer), customer) or "||")
    assert len(top.products) == 50 and len(set(top.products)) == 50
    assert top.scores == sorted(top.scores, reverse=True)
    # The served model is saved with the version: the ranker when it trained (the card says which, and why not).
    assert card["model"] in ("ranker", "hybrid") and card["ranker"]["trained"] == (card["model"] == "ranker")
    served = Recommender.load(tmp_path / "artifacts" / "models" / version / card["model"])
    assert list(served.recommend_ids(np.array([customer]), k=50)[0]) == top.products

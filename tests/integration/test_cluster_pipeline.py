"""The whole pipeline on a local three-node Redis Cluster: the batch's publish, the API, a history replayed into
Kafka and the real stream worker, each a cluster client seeded from one node's URL."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient
from redis.crc import key_slot

from api.main import create_app
from batch.evaluation.result import EvaluationOptions
from batch.pipeline import run
from batch.stages import Stages
from common import toplist
from common.assignment import group_of
from common.data import LoadedData, load_history, load_mapping
from common.data.synthetic import SyntheticSpec, write
from common.keys import KeyLayout, customer_slot
from common.redis_clients import sync_client
from common.settings import Settings
from stack import LocalStack
from stack.cluster import slot_ranges
from stack.scratch import start_worker, stop_worker
from tests.integration.streamkit import differences, send, wait_for

pytestmark = pytest.mark.integration


def _published(settings: Settings, folder: Path, seed: int) -> tuple[LoadedData, str]:
    """A small synthetic shop, its model fitted and published through a cluster client."""
    write(SyntheticSpec(customers=300, products=120, lines=6000, seed=seed), folder / "shop")
    loaded = load_history(folder / "shop", load_mapping("case_study"))
    publisher = sync_client(settings)
    version = run(loaded, EvaluationOptions(case_study=False), folder / "artifacts", publisher,
                  KeyLayout(settings.key_prefix), Stages(), progress=lambda _m: None).version
    publisher.close()
    return loaded, version


def test_publish_serve_replay_and_stream_on_the_cluster(
    on_cluster: tuple[Settings, redis.RedisCluster], tmp_path: Path,
) -> None:
    settings, client = on_cluster
    keys = KeyLayout(settings.key_prefix)
    loaded, version = _published(settings, tmp_path, seed=21)
    lines = loaded.lines
    assert client.get(keys.model_current()) == version

    customers = sorted(lines["customer_id"].unique())
    treated = [c for c in customers if group_of(settings.ab_salt, c, settings.ab_treatment_percent) == "treatment"]
    with TestClient(create_app(settings)) as api:
        for customer in treated[:20]:  # no live purchases yet: the published list as it is
            body = api.get("/recommend", params={"customer_id": customer, "k": 5}).json()
            top = toplist.decode(str(client.hget(keys.model_topn(version, customer), customer)))
            assert (body["model_version"], body["strategy"]) == (version, "model")
            assert [item["product_id"] for item in body["items"]] == top.products[:5]

        worker = start_worker(settings, tmp_path / "worker.log")
        try:
            send(settings, lines)
            wait_for(client, keys, processed=len(lines))
            send(settings, lines.iloc[:500])  # redelivered: counted as duplicates, applied once
            final = wait_for(client, keys, duplicates=500)
        finally:
            stop_worker(worker)
        assert final["processed"] == len(lines)
        assert differences(client, keys, lines) == []
        mine = lines[lines["customer_id"] == treated[0]]
        assert api.get(f"/customers/{treated[0]}").json()["rfm"]["orders"] == mine["order_id"].nunique()
        served = api.get("/recommend", params={"customer_id": treated[0], "k": 5})
        assert served.status_code == 200 and len(served.json()["items"]) == 5


def test_a_dead_node_costs_its_own_customers_a_503_and_nobody_else_anything(
    on_cluster: tuple[Settings, redis.RedisCluster], tmp_path: Path,
) -> None:
    settings, _ = on_cluster
    keys = KeyLayout(settings.key_prefix)
    loaded, _version = _published(settings, tmp_path, seed=22)
    ranges = slot_ranges(3)

    def node_of(slot: int) -> int:
        return next(i for i, (first, last) in enumerate(ranges) if first <= slot <= last)

    # not the node the URL names (the seed) nor the one with the shared slot: those answer for everyone
    dead = next(i for i in (1, 2) if i != node_of(key_slot(keys.model_current().encode())))
    customers = sorted(loaded.lines["customer_id"].unique())
    on_dead = [c for c in customers if node_of(customer_slot(c)) == dead][:15]
    elsewhere = [c for c in customers if node_of(customer_slot(c)) != dead][:15]
    local = LocalStack(settings)
    with TestClient(create_app(settings)) as api:
        assert all(api.get("/recommend", params={"customer_id": c}).status_code == 200 for c in on_dead + elsewhere)
        assert local.down(only=[f"redis-{dead + 1}"]) == [f"redis-{dead + 1}"]
        try:
            for customer in on_dead:
                answer = api.get("/recommend", params={"customer_id": customer})
                assert answer.status_code == 503 and "Redis" in answer.json()["detail"]
            for customer in elsewhere:
                answer = api.get("/recommend", params={"customer_id": customer})
                assert answer.status_code == 200 and answer.json()["items"]
        finally:
            local.up()
        assert all(api.get("/recommend", params={"customer_id": c}).status_code == 200 for c in on_dead)

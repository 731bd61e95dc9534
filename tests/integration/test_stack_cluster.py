"""`recsys stack up` with RECSYS_REDIS_CLUSTER=true against real redis-server nodes: the cluster is formed with the
slots spread evenly, `down` then `up` keeps every key, and while one node is down the others keep serving theirs."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.cluster import RedisCluster
from redis.crc import key_slot

from common.settings import Settings
from stack import LocalStack, StackError
from stack.cluster import slot_ranges
from stack.scratch import stack_settings

pytestmark = pytest.mark.integration

KEYS = 300


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[Settings, LocalStack]]:
    settings = stack_settings(tmp_path, redis_cluster=True)
    local = LocalStack(settings)
    try:
        local.up()
        yield settings, local
    finally:
        local.down()


def _client(settings: Settings) -> RedisCluster:
    return RedisCluster(host=settings.redis_host, port=settings.redis_port, decode_responses=True)


def test_up_forms_a_cluster_with_the_slots_spread_evenly(cluster: tuple[Settings, LocalStack]) -> None:
    settings, local = cluster
    statuses = {s.name: s for s in local.status()}
    assert sorted(statuses) == ["broker", "redis-1", "redis-2", "redis-3"]
    assert all(s.healthy for s in statuses.values())
    node = redis.Redis(host=settings.redis_host, port=settings.redis_port + 2, decode_responses=True)
    owners = sorted((first, last, owner[1]) for first, last, owner, *_ in node.cluster("SLOTS"))
    node.close()
    expected_ports = local.cluster_ports()
    assert owners == [(first, last, port) for (first, last), port in zip(slot_ranges(3), expected_ports, strict=True)]


def test_down_then_up_keeps_every_key_on_every_node(cluster: tuple[Settings, LocalStack]) -> None:
    settings, local = cluster
    client = _client(settings)
    client.mset_nonatomic({f"k{i}": str(i) for i in range(KEYS)})
    per_node = [redis.Redis(host=settings.redis_host, port=port).dbsize() for port in local.cluster_ports()]
    assert sum(per_node) == KEYS and min(per_node) > KEYS // 5  # the keys really are spread over the three
    client.close()

    assert sorted(local.down()) == ["broker", "redis-1", "redis-2", "redis-3"]
    local.up()
    client = _client(settings)
    assert client.mget_nonatomic([f"k{i}" for i in range(KEYS)]) == [str(i) for i in range(KEYS)]
    client.close()


def test_a_dead_node_takes_only_its_own_slots_away_and_comes_back_whole(
    cluster: tuple[Settings, LocalStack],
) -> None:
    settings, local = cluster
    client = _client(settings)
    client.mset_nonatomic({f"k{i}": str(i) for i in range(KEYS)})
    dead_port = settings.redis_port + 1
    first, last = slot_ranges(3)[1]
    on_dead = {f"k{i}" for i in range(KEYS) if first <= key_slot(f"k{i}".encode()) <= last}
    client.close()

    assert local.down(only=["redis-2"]) == ["redis-2"]
    survivors = [redis.Redis(host=settings.redis_host, port=p, decode_responses=True)
                 for p in local.cluster_ports() if p != dead_port]
    served = {key for node in survivors for key in node.keys("k*")}
    assert served == {f"k{i}" for i in range(KEYS)} - on_dead  # the other nodes still answer for theirs
    assert all(node.get(key) is not None for node in survivors for key in node.keys("k*"))
    for node in survivors:
        node.close()

    local.up()  # starts only the dead node; it rejoins with its append-only file
    assert {s.name: s.healthy for s in local.status()} == dict.fromkeys(["broker", "redis-1", "redis-2", "redis-3"],
                                                                          True)
    client = _client(settings)
    assert client.mget_nonatomic(sorted(on_dead)) == [key[1:] for key in sorted(on_dead)]
    client.close()


def test_a_cluster_formed_with_other_node_count_is_refused_with_what_to_do(
    cluster: tuple[Settings, LocalStack],
) -> None:
    settings, local = cluster
    local.down()
    bigger = LocalStack(settings.model_copy(update={"stack_redis_nodes": 4}))
    try:
        with pytest.raises(StackError, match=r"formed with 3 nodes.*stack reset --yes"):
            bigger.up()
    finally:
        bigger.down()


def test_the_stack_reports_every_node_and_migrate_refuses_a_cluster(cluster: tuple[Settings, LocalStack]) -> None:
    settings, _ = cluster
    env = os.environ | {"RECSYS_REDIS_CLUSTER": "true", "RECSYS_REDIS_URL": settings.redis_url,
                        "RECSYS_BROKER_URL": settings.broker_url, "RECSYS_RUN_DIR": str(settings.run_dir)}
    status = subprocess.run([sys.executable, "-m", "cli.main", "stack", "status"], env=env, capture_output=True,
                            text=True, timeout=60)
    assert status.returncode == 0
    assert [line.split()[0] for line in status.stdout.splitlines()] == ["broker", "redis-1", "redis-2", "redis-3"]
    assert all("healthy" in line for line in status.stdout.splitlines())
    refused = subprocess.run([sys.executable, "-m", "cli.main", "migrate"], env=env, capture_output=True, text=True,
                             timeout=60)
    assert refused.returncode == 2 and "moves a single Redis's keys" in refused.stderr


def test_down_stops_the_redis_of_the_mode_it_was_started_in(tmp_path: Path) -> None:
    cluster_settings = stack_settings(tmp_path, redis_cluster=True)
    single = LocalStack(cluster_settings.model_copy(update={"redis_cluster": False}))
    as_cluster = LocalStack(cluster_settings)
    try:
        single.up()
        with pytest.raises(StackError, match="redis still running"):
            as_cluster.wipe()  # RECSYS_REDIS_CLUSTER changed meanwhile: the single redis-server is still seen
        assert sorted(as_cluster.down()) == ["broker", "redis"]
        assert not any(s.running for s in single.status())
    finally:
        single.down()


def test_a_cluster_named_by_localhost_forms_too(tmp_path: Path) -> None:
    numeric = stack_settings(tmp_path, redis_cluster=True)
    local = LocalStack(numeric.model_copy(update={"redis_url": f"redis://localhost:{numeric.redis_port}/0"}))
    try:
        assert all(s.healthy for s in local.up())  # CLUSTER MEET wants an address: the name is resolved first
    finally:
        local.down()

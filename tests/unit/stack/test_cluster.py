"""Forming the local Redis Cluster: the slots split evenly among the masters, each node in a folder of its own at the
URL's port and the next ones, and a cluster only with database 0."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from common.settings import Settings
from stack.cluster import SLOTS, NodeInfo, parse_cluster_info, slot_ranges
from stack.local import LocalStack
from stack.scratch import stack_settings


@pytest.mark.parametrize("masters", [1, 2, 3, 5, 7])
def test_slot_ranges_cover_every_slot_once_in_near_equal_parts(masters: int) -> None:
    ranges = slot_ranges(masters)
    assert len(ranges) == masters
    assert ranges[0][0] == 0 and ranges[-1][1] == SLOTS - 1
    assert all(ranges[i][1] + 1 == ranges[i + 1][0] for i in range(masters - 1))  # contiguous, no overlap
    sizes = [last - first + 1 for first, last in ranges]
    assert sum(sizes) == SLOTS and max(sizes) - min(sizes) <= 1


def test_three_masters_split_the_slots_as_redis_cli_does() -> None:
    assert slot_ranges(3) == [(0, 5461), (5462, 10922), (10923, 16383)]
    with pytest.raises(ValueError):
        slot_ranges(0)


def test_cluster_info_is_read_from_redis_py_fields() -> None:
    fields = {"cluster_state": "ok", "cluster_slots_assigned": "16384", "cluster_known_nodes": "3", "cluster_size": "3"}
    assert parse_cluster_info(fields) == NodeInfo("ok", 3, 16384)
    assert NodeInfo("ok", 3, 16384).whole(3)
    assert not NodeInfo("ok", 3, 10923).whole(3)  # ok without full coverage, but one node's slots not yet learnt
    assert not NodeInfo("ok", 2, 16384).whole(3) and not NodeInfo("fail", 3, 16384).whole(3)


def test_cluster_nodes_sit_at_consecutive_ports_each_with_its_own_folder(tmp_path: Path) -> None:
    settings = stack_settings(tmp_path, redis_cluster=True, stack_redis_nodes=4)
    services = LocalStack(settings)._services()
    nodes = [s for s in services if s.binary == "redis-server"]
    assert [s.name for s in nodes] == ["redis-1", "redis-2", "redis-3", "redis-4"]
    assert [s.port for s in nodes] == [settings.redis_port + i for i in range(4)]
    folders = {s.args[s.args.index("--dir") + 1] for s in nodes}
    assert len(folders) == 4 and all(str(tmp_path.resolve() / "stack" / "redis") in f for f in folders)
    for node in nodes:
        assert node.args[node.args.index("--cluster-enabled") + 1] == "yes"
        assert node.args[node.args.index("--appendonly") + 1] == "yes"
        assert node.args[node.args.index("--cluster-require-full-coverage") + 1] == "no"


def test_single_redis_stays_one_node_without_cluster_arguments(tmp_path: Path) -> None:
    nodes = [s for s in LocalStack(stack_settings(tmp_path))._services() if s.binary == "redis-server"]
    assert [s.name for s in nodes] == ["redis"] and "--cluster-enabled" not in nodes[0].args


def test_a_cluster_refuses_a_database_other_than_zero() -> None:
    with pytest.raises(ValidationError, match="only database 0"):
        Settings(_env_file=None, redis_cluster=True, redis_url="redis://127.0.0.1:7000/2")
    assert Settings(_env_file=None, redis_cluster=True, redis_url="redis://127.0.0.1:7000").redis_port == 7000
    assert Settings(_env_file=None, redis_url="redis://127.0.0.1:7000/2").redis_port == 7000

"""Form a local Redis Cluster from fresh redis-server nodes, the way `redis-cli --cluster create` does: the 16384
slots split evenly among the masters, a distinct config epoch each, every node introduced to the first, then wait
until every node reports `cluster_state:ok`. A cluster already formed (a `down` then `up`: each node reloads its
nodes.conf) is only waited for."""

from __future__ import annotations

import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import redis

from stack.process import StackError

SLOTS = 16384
POLL_S = 0.1


@dataclass(frozen=True)
class NodeInfo:
    state: str  # "ok" or "fail"
    known_nodes: int
    slots_assigned: int

    def whole(self, nodes: int) -> bool:
        """Ok, with all `nodes` known and every slot assigned in this node's view (without full coverage
        required, a node says ok before it has learnt every other node's slots)."""
        return self.state == "ok" and self.known_nodes == nodes and self.slots_assigned == SLOTS


def slot_ranges(masters: int) -> list[tuple[int, int]]:
    """Inclusive (first, last) slot of each master; sizes differ by at most one."""
    if masters < 1:
        raise ValueError("a cluster needs at least one master")
    base, extra = divmod(SLOTS, masters)
    ranges, first = [], 0
    for i in range(masters):
        size = base + (1 if i < extra else 0)
        ranges.append((first, first + size - 1))
        first += size
    return ranges


def parse_cluster_info(fields: Mapping[str, object]) -> NodeInfo:
    """From CLUSTER INFO's fields, as redis-py parses them."""
    return NodeInfo(str(fields["cluster_state"]), int(str(fields["cluster_known_nodes"])),
                    int(str(fields["cluster_slots_assigned"])))


def node_info(host: str, port: int) -> NodeInfo | None:
    """The node's own view of the cluster, or None when it does not answer."""
    client = redis.Redis(host=host, port=port, socket_timeout=1, socket_connect_timeout=1, decode_responses=True)
    try:
        return parse_cluster_info(client.cluster("INFO"))
    except redis.RedisError:
        return None
    finally:
        client.close()


def ensure_cluster(nodes: Sequence[tuple[str, int]], timeout_s: float) -> None:
    """Form the cluster when every node is fresh, then wait for `cluster_state:ok` on all of them."""
    infos = [node_info(host, port) for host, port in nodes]
    if all(info is not None and info.known_nodes == 1 and info.slots_assigned == 0 for info in infos):
        _form(nodes)
    else:
        formed = [info.known_nodes for info in infos if info is not None and info.slots_assigned > 0]
        if any(known != len(nodes) for known in formed):
            raise StackError(
                f"the local Redis Cluster was formed with {max(formed)} nodes, not RECSYS_STACK_REDIS_NODES="
                f"{len(nodes)}: set it back, or `recsys stack reset --yes` to start over without its state"
            )
    _wait_ok(nodes, timeout_s)


def _form(nodes: Sequence[tuple[str, int]]) -> None:
    clients = [redis.Redis(host=host, port=port, socket_timeout=5) for host, port in nodes]
    try:
        # MEET takes an address, not a name ("localhost" is refused): resolved before anything is assigned
        addresses = [(socket.gethostbyname(host), port) for host, port in nodes]
        for epoch, (client, (first, last)) in enumerate(zip(clients, slot_ranges(len(nodes)), strict=True), 1):
            client.cluster("ADDSLOTS", *range(first, last + 1))
            client.cluster("SET-CONFIG-EPOCH", epoch)
        for address, port in addresses[1:]:
            clients[0].cluster("MEET", address, port)
    except (OSError, redis.RedisError) as exc:
        raise StackError(f"forming the local Redis Cluster failed ({exc}); `recsys stack reset --yes` starts over "
                         "without its state") from exc
    finally:
        for client in clients:
            client.close()


def _wait_ok(nodes: Sequence[tuple[str, int]], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        infos = [node_info(host, port) for host, port in nodes]
        if all(info is not None and info.whole(len(nodes)) for info in infos):
            return
        if time.monotonic() > deadline:
            views = ", ".join(f"{port}: {info.state if info else 'no answer'}"
                              for (_, port), info in zip(nodes, infos, strict=True))
            raise StackError(f"the local Redis Cluster did not reach cluster_state:ok within {timeout_s:.0f}s "
                             f"({views}); see the redis logs under the run folder's stack/")
        time.sleep(POLL_S)

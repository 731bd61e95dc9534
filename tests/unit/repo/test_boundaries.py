"""The rooms' import boundaries, read from the source: each room imports only the rooms below it, and the API's
routers leave Redis and Kafka to the services and adapters."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
ROOMS = ("api", "batch", "benchmarks", "cli", "common", "experiments", "producers", "stack", "stream_app", "ui")
# What each room may import of the others. The CLI and the benchmarks drive everything; nothing imports the tests.
ALLOWED = {
    "common": set(),
    "experiments": {"common"},
    "producers": {"common"},
    "stack": {"common"},
    "ui": {"common"},
    "api": {"common", "experiments"},
    "batch": {"common", "experiments"},
    "stream_app": {"common", "experiments"},
    "cli": set(ROOMS) - {"cli", "benchmarks"},
    "benchmarks": set(ROOMS) - {"cli", "benchmarks"},
}
# What a router may not reach itself: Redis and Kafka clients and the API's plumbing (services do it).
ROUTER_FORBIDDEN_IMPORTS = ("redis", "aiokafka", "hiredis", "api.adapters", "api.state")
ROUTER_FORBIDDEN_ATTRIBUTES = ("redis", "redis_mux", "purchases", "exposures")


def imported(tree: ast.AST) -> Iterator[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def sources(room: str) -> list[Path]:
    return sorted((ROOT / room).rglob("*.py"))


@pytest.mark.parametrize("room", ROOMS)
def test_a_room_imports_only_the_rooms_below_it(room: str) -> None:
    crossing = {
        f"{path.relative_to(ROOT)} imports {module}"
        for path in sources(room)
        for module in imported(ast.parse(path.read_text()))
        if (top := module.split(".")[0]) in (*ROOMS, "tests") and top != room and top not in ALLOWED[room]
    }
    assert not crossing


def test_routers_leave_redis_and_kafka_to_the_services() -> None:
    routers = sources("api/routes")
    assert len(routers) >= 9
    reaching = set()
    for path in routers:
        tree = ast.parse(path.read_text())
        reaching |= {f"{path.name} imports {m}" for m in imported(tree)
                     if m.startswith(ROUTER_FORBIDDEN_IMPORTS) and m.split(".")[0] in ("redis", "aiokafka",
                                                                                         "hiredis", "api")}
        reaching |= {f"{path.name} uses state.{node.attr}" for node in ast.walk(tree)
                     if isinstance(node, ast.Attribute) and node.attr in ROUTER_FORBIDDEN_ATTRIBUTES}
    assert not reaching


def test_the_check_sees_a_crossing() -> None:
    """The walker itself: a router that reads Redis and a common module importing the API are both seen."""
    tree = ast.parse("from api.state import ApiState\nimport redis.asyncio\nasync def f(state):\n"
                     "    return await state.redis.get('k')\n")
    assert set(imported(tree)) == {"api.state", "redis.asyncio"}
    assert [n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)] == ["get", "redis"]

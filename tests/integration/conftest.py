"""The real local stack (Tansu + redis-server), started once per session by the project's own stack code."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import cast

import pandas as pd
import pytest
import redis

from batch.evaluation.result import EvaluationOptions
from batch.pipeline import run
from batch.stages import Stages
from common.data import LoadedData, load_history, load_mapping
from common.data.synthetic import SyntheticSpec, write
from common.keys import KeyLayout
from common.redis_clients import sync_client
from common.settings import Settings
from stack import LocalStack
from stack.scratch import stack_settings


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    settings = stack_settings(tmp_path_factory.mktemp("stack"))
    local = LocalStack(settings)
    local.up()
    yield settings
    local.down()


@pytest.fixture(scope="session")
def cluster_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A local Redis Cluster of three nodes (and a broker), started once per session like `stack`."""
    settings = stack_settings(tmp_path_factory.mktemp("cluster"), redis_cluster=True)
    local = LocalStack(settings)
    local.up()
    yield settings
    local.down()


@dataclass(frozen=True)
class Isolated:
    """One test's own topic names and key prefix on the shared stack."""

    settings: Settings
    keys: KeyLayout
    redis: redis.Redis


def _own_names(stack: Settings, prefix: str) -> Settings:
    tag = uuid.uuid4().hex[:10]
    return stack.model_copy(update={
        "key_prefix": f"{prefix}{tag}", "topic_purchases": f"purchases-{tag}",
        "topic_dead_letters": f"purchases-dlq-{tag}", "topic_exposures": f"exposures-{tag}",
        "topic_customers": f"customers-{tag}", "topic_products": f"products-{tag}",
        "topic_data_reports": f"data-reports-{tag}"})


def _isolated(stack: Settings, prefix: str) -> Iterator[Isolated]:
    settings = _own_names(stack, prefix)
    client = sync_client(settings, decode_responses=True)
    # typed as one Redis: what these tests call behaves the same on a cluster client
    yield Isolated(settings, KeyLayout(settings.key_prefix), cast(redis.Redis, client))
    for key in list(client.scan_iter(match=f"{settings.key_prefix}:*", count=1000)):
        client.delete(key)
    client.close()


@pytest.fixture
def isolated(request: pytest.FixtureRequest) -> Iterator[Isolated]:
    """On one Redis; a test marked ON_SINGLE_AND_CLUSTER runs twice, the second time on the local cluster."""
    on_cluster = getattr(request, "param", "single") == "cluster"
    stack: Settings = request.getfixturevalue("cluster_stack" if on_cluster else "stack")
    yield from _isolated(stack, "k" if on_cluster else "t")


ON_SINGLE_AND_CLUSTER = pytest.mark.parametrize("isolated", ["single", "cluster"], indirect=True)


@pytest.fixture
def on_cluster(cluster_stack: Settings) -> Iterator[tuple[Settings, redis.RedisCluster]]:
    """The cluster stack with this test's own topics and key prefix, and a cluster client."""
    settings = _own_names(cluster_stack, "k")
    client = redis.RedisCluster.from_url(settings.redis_url, decode_responses=True)
    yield settings, client
    for key in list(client.scan_iter(match=f"{settings.key_prefix}:*", count=1000)):
        client.delete(key)
    client.close()


@dataclass(frozen=True)
class Published:
    settings: Settings
    keys: KeyLayout
    version: str
    lines: pd.DataFrame
    redis: redis.Redis
    loaded: LoadedData


@pytest.fixture(scope="module")
def published(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Published]:
    tag = uuid.uuid4().hex[:10]
    settings = stack.model_copy(update={
        "key_prefix": f"api{tag}", "topic_purchases": f"purchases-{tag}", "topic_exposures": f"exposures-{tag}",
        "topic_dead_letters": f"dlq-{tag}", "topic_customers": f"customers-{tag}",
        "topic_products": f"products-{tag}", "topic_data_reports": f"data-reports-{tag}",
    })
    folder = tmp_path_factory.mktemp("shop")
    write(SyntheticSpec(customers=300, products=120, lines=6000, seed=21), folder)
    loaded = load_history(folder, load_mapping("case_study"))
    client = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    keys = KeyLayout(settings.key_prefix)
    result = run(loaded, EvaluationOptions(case_study=False), tmp_path_factory.mktemp("artifacts"),
                 redis.Redis.from_url(settings.redis_url), keys, Stages(), progress=lambda _m: None)
    yield Published(settings, keys, result.version, loaded.lines, client, loaded)
    for key in client.scan_iter(match=f"{settings.key_prefix}:*", count=1000):
        client.delete(key)
    client.close()

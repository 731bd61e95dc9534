"""A published model on the real local stack, and the API in front of it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pandas as pd
import pytest
import redis
from fastapi.testclient import TestClient

from api.main import create_app
from batch.pipeline import EvaluationOptions, run
from batch.stages import Stages
from common.data import load_history, load_mapping
from common.data.synthetic import SyntheticSpec, write
from common.keys import KeyLayout
from common.settings import Settings


@dataclass(frozen=True)
class Published:
    settings: Settings
    keys: KeyLayout
    version: str
    lines: pd.DataFrame
    redis: redis.Redis


@pytest.fixture(scope="module")
def published(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Published]:
    tag = uuid.uuid4().hex[:10]
    settings = stack.model_copy(update={
        "key_prefix": f"api{tag}", "topic_purchases": f"purchases-{tag}", "topic_exposures": f"exposures-{tag}",
        "topic_dead_letters": f"dlq-{tag}",
    })
    folder = tmp_path_factory.mktemp("shop")
    write(SyntheticSpec(customers=300, products=120, lines=6000, seed=21), folder)
    loaded = load_history(folder, load_mapping("case_study"))
    client = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    keys = KeyLayout(settings.key_prefix)
    result = run(loaded, EvaluationOptions(case_study=False), tmp_path_factory.mktemp("artifacts"),
                 redis.Redis.from_url(settings.redis_url), keys, Stages(), progress=lambda _m: None)
    yield Published(settings, keys, result.version, loaded.lines, client)
    for key in client.scan_iter(match=f"{settings.key_prefix}:*", count=1000):
        client.delete(key)
    client.close()


@pytest.fixture
def api(published: Published) -> Iterator[TestClient]:
    with TestClient(create_app(published.settings)) as client:
        yield client

"""Customer profiles and the product catalogue through their compacted topics and the stream worker into Redis:
what Redis holds equals the files, a changed profile replaces the old one without a batch run, a tombstone
deletes, and a bad record is dead-lettered with its reason."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pandas as pd
import pytest
from aiokafka import AIOKafkaProducer
from fastapi.testclient import TestClient

from api.main import create_app
from batch.source import from_topic
from common.data import load_history, load_mapping
from common.data.synthetic import SyntheticSpec, write
from common.events import CustomerProfile
from producers.master_data import send_master_data
from stack.scratch import start_worker, stop_worker
from tests.integration.conftest import ON_SINGLE_AND_CLUSTER, Isolated
from tests.integration.streamkit import send

pytestmark = pytest.mark.integration


def _wait(isolated: Isolated, field: str, at_least: int, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while int(isolated.redis.hget(isolated.keys.stream_stats(), field) or 0) < at_least:
        assert time.monotonic() < deadline, f"stream stats {isolated.redis.hgetall(isolated.keys.stream_stats())}"
        time.sleep(0.25)


async def _produce(isolated: Isolated, topic: str, records: list[tuple[str, bytes | None]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=isolated.settings.bootstrap_servers)
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(topic, key=key.encode(), value=value)
    finally:
        await producer.stop()


def _file_profiles(folder: Path) -> dict[str, dict[str, str]]:
    """The customers file read directly: first row per customer, blank fields left out."""
    raw = pd.read_csv(folder / "dataset_sample_2.csv", dtype=str).drop_duplicates("UUID_CLIENTE_CONSUMIDOR")
    expected: dict[str, dict[str, str]] = {}
    for row in raw.itertuples(index=False):
        fields = {"region": row.DEPARTAMENTO, "city": row.CIUDAD, "gender": row.GENERO_DIM_CLIENTE,
                  "birth_date": row.FECHANACIMIENTO_DIM_CLIENTE[:10] if isinstance(row.FECHANACIMIENTO_DIM_CLIENTE,
                                                                                   str) else None}
        expected[str(row.UUID_CLIENTE_CONSUMIDOR)] = {k: v for k, v in fields.items() if isinstance(v, str)}
    return expected


@ON_SINGLE_AND_CLUSTER
def test_profiles_and_catalogue_in_redis_equal_the_files_and_follow_changes(isolated: Isolated,
                                                                            tmp_path: Path) -> None:
    folder = tmp_path / "shop"
    write(SyntheticSpec(customers=250, products=80, lines=3000, seed=5), folder)
    loaded = load_history(folder, load_mapping("case_study"))
    worker = start_worker(isolated.settings, tmp_path / "worker.log")
    try:
        sent = asyncio.run(send_master_data(isolated.settings, loaded, {"lines": len(loaded.lines)}))
        assert sent.invalid == {}
        _wait(isolated, "profiles_applied", sent.profiles)
        _wait(isolated, "products_applied", sent.products)

        expected = _file_profiles(folder)
        assert sent.profiles == len(expected)
        pipe = isolated.redis.pipeline(transaction=False)
        for customer in expected:
            pipe.hgetall(isolated.keys.customer_profile(customer))
        assert dict(zip(expected, pipe.execute(), strict=True)) == expected

        catalogue = pd.read_csv(folder / "products.csv", dtype=str)
        stored = {p: json.loads(v) for p, v in isolated.redis.hgetall(isolated.keys.product_catalogue()).items()}
        assert stored == {row.COD_PRODUCTO: {"name": row.NOMBRE_PRODUCTO, "category": row.CATEGORIA}
                          for row in catalogue.itertuples(index=False)}

        moved, gone = list(expected)[:2]
        before = dict(expected[moved])
        update = CustomerProfile(customer_id=moved, region="Valle del Cauca", city="Cali",
                                 gender=before.get("gender"), birth_date=None)  # type: ignore[arg-type]
        asyncio.run(_produce(isolated, isolated.settings.topic_customers, [
            (moved, update.to_bytes()), (gone, None), ("bad-one", b'{"customer_id": "bad one!"}')]))
        _wait(isolated, "profiles_applied", sent.profiles + 2)
        _wait(isolated, "dead_lettered", 1)
        assert isolated.redis.hgetall(isolated.keys.customer_profile(moved)) == {
            "region": "Valle del Cauca", "city": "Cali", **({"gender": before["gender"]} if "gender" in before else {})}
        assert isolated.redis.exists(isolated.keys.customer_profile(gone)) == 0
        with TestClient(create_app(isolated.settings)) as api:
            shown = api.get(f"/customers/{moved}").json()["profile"]
        assert (shown["region"], shown["city"], shown["age"]) == ("Valle del Cauca", "Cali", None)
    finally:
        stop_worker(worker)


def test_the_batch_reads_names_profiles_and_the_files_cleaning_report_from_the_topics(isolated: Isolated,
                                                                                     tmp_path: Path) -> None:
    """No worker: the batch reads the topics themselves. What the producer removed from the file (before the
    purchases topic) arrives as the recorded report."""
    folder = tmp_path / "shop"
    write(SyntheticSpec(customers=150, products=60, lines=2000, seed=9), folder)
    loaded = load_history(folder, load_mapping("case_study"))
    asyncio.run(send_master_data(isolated.settings, loaded, {"lines": len(loaded.lines)}))
    assert send(isolated.settings, loaded.lines) == len(loaded.lines)
    # A later profile record for the same customer replaces the first (the latest per key wins).
    moved = str(loaded.customers["customer_id"].iloc[0])
    asyncio.run(_produce(isolated, isolated.settings.topic_customers, [
        (moved, CustomerProfile(customer_id=moved, region="Nariño", city="Pasto").to_bytes())]))

    read = from_topic(isolated.settings, progress=lambda _n: None)

    assert len(read.lines) == len(loaded.lines)
    names = pd.read_csv(folder / "products.csv", dtype=str).set_index("COD_PRODUCTO")["NOMBRE_PRODUCTO"]
    assert (read.lines["product_name"] == read.lines["product_id"].map(names)).all()
    profiles = read.customers.set_index("customer_id")
    expected = loaded.customers.set_index("customer_id")
    assert set(profiles.index) == set(expected.index)
    others = expected.index != moved
    for column in ("region", "city", "gender", "age"):
        assert profiles.loc[expected.index[others], column].equals(expected.loc[others, column]), column
    assert (profiles.loc[moved, "region"], profiles.loc[moved, "city"]) == ("Nariño", "Pasto")
    assert profiles["age"].isna()[moved]  # the new record has no birth date
    [recorded] = read.source_reports
    assert recorded["cleaning"]["removed"] == loaded.report.removed
    assert recorded["cleaning"]["raw_rows"] == loaded.report.raw_rows
    assert sum(recorded["cleaning"]["removed"].values()) > 0  # the synthetic file's dirt, never on the topic
    assert read.report.removed == {"invalid_event": 0, "duplicate": 0}
    assert read.report.customers["profiles_without_purchases"] == int((~expected.index.isin(
        loaded.lines["customer_id"])).sum())

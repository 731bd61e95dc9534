"""The real broker and Redis: keyed JSON through a consumer group with committed offsets; a Redis round trip."""

from __future__ import annotations

import json

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from tests.integration.conftest import Isolated

pytestmark = pytest.mark.integration


def _consume(bootstrap: str, topic: str, group: str, expected: int) -> list[tuple[str, dict[str, int]]]:
    consumer = KafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest",
        enable_auto_commit=False, session_timeout_ms=10_000, heartbeat_interval_ms=1_000,
        consumer_timeout_ms=20_000,
    )
    received = []
    try:
        for record in consumer:
            received.append((record.key.decode(), json.loads(record.value)))
            if len(received) == expected:
                break
        consumer.commit()
    finally:
        consumer.close()
    return received


def test_keyed_json_through_a_consumer_group(isolated: Isolated) -> None:
    settings = isolated.settings
    topic = settings.topic_purchases
    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    admin.create_topics([NewTopic(topic, num_partitions=4, replication_factor=1)])
    admin.close()

    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers, linger_ms=0, batch_size=1)
    sent = [(f"c{i % 7}", {"n": i}) for i in range(60)]
    for key, body in sent:
        producer.send(topic, key=key.encode(), value=json.dumps(body).encode())
    producer.flush()

    first = _consume(settings.bootstrap_servers, topic, "g1", expected=40)
    rest = _consume(settings.bootstrap_servers, topic, "g1", expected=20)  # resumes from the committed offsets

    received = first + rest
    assert sorted(body["n"] for _, body in received) == list(range(60))
    for key in {k for k, _ in sent}:
        # One customer's events stay in order: the key pins them to one partition.
        mine = [body["n"] for k, body in received if k == key]
        assert mine == sorted(mine)

    check = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers, group_id="g1")
    partitions = [TopicPartition(topic, p) for p in range(4)]
    committed = sum(check.committed(tp) or 0 for tp in partitions)
    check.close()
    assert committed == 60


def test_redis_round_trip(isolated: Isolated) -> None:
    key = isolated.keys.customer_rfm("c1")
    pipe = isolated.redis.pipeline(transaction=True)
    pipe.hset(key, mapping={"orders": 2, "monetary": "10.5"})
    pipe.hincrby(key, "orders", 1)
    pipe.execute()
    assert isolated.redis.hgetall(key) == {"orders": "3", "monetary": "10.5"}

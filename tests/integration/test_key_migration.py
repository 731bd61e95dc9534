"""`common.key_migration.migrate` on a real Redis: the state written under the old names reads the same under
the new ones."""

from __future__ import annotations

from common.key_migration import migrate
from tests.integration.conftest import Isolated


def test_old_state_is_renamed_with_its_values_and_a_second_run_changes_nothing(isolated: Isolated) -> None:
    client, keys, prefix = isolated.redis, isolated.keys, isolated.keys.prefix
    client.hset(f"{prefix}:cust:c1:rfm", mapping={"orders": 3, "monetary_cents": 1250})
    client.zadd(f"{prefix}:cust:c1:applied", {"e1": 100, "e2": 200})
    client.zadd(f"{prefix}:prod:pop", {"p1": 5.0})
    client.hset(f"{prefix}:stream:stats", "processed", 2)
    client.zadd(f"{prefix}:ab:exp1:cust:c1:exposed", {"p1|r1": 90})
    client.hset(f"{prefix}:ab:exp1:control:counters", "exposures", 1)
    client.set(f"{prefix}:model:current", "v7")
    client.hset(f"{prefix}:model:v7:topn", "c1", "x")
    client.set(keys.ab_live_plan(), "already new")

    first = migrate(client, prefix)
    assert (first.renamed, first.conflicts) == (7, 0)
    assert client.hgetall(keys.customer_rfm("c1")) == {"orders": "3", "monetary_cents": "1250"}
    assert client.zrange(keys.customer_applied("c1"), 0, -1, withscores=True) == [("e1", 100.0), ("e2", 200.0)]
    assert client.zscore(keys.product_popularity(), "p1") == 5.0
    assert client.hget(keys.stream_stats(), "processed") == "2"
    assert client.zscore(keys.ab_customer_exposures("exp1", "c1"), "p1|r1") == 90
    assert client.hget(keys.ab_group_counters("exp1", "control"), "exposures") == "1"
    assert client.get(keys.model_current()) == "v7"
    assert client.hget(f"{prefix}:model:v7:topn", "c1") == "x"  # a version's keys keep their names
    assert client.get(keys.ab_live_plan()) == "already new"
    assert not client.exists(f"{prefix}:cust:c1:rfm", f"{prefix}:prod:pop")

    assert migrate(client, prefix).renamed == 0


def test_an_old_key_whose_new_name_is_taken_is_kept_and_counted(isolated: Isolated) -> None:
    client, keys, prefix = isolated.redis, isolated.keys, isolated.keys.prefix
    client.hset(f"{prefix}:stream:stats", "processed", 2)
    client.hset(keys.stream_stats(), "processed", 9)
    result = migrate(client, prefix)
    assert (result.renamed, result.conflicts) == (0, 1)
    assert client.hget(keys.stream_stats(), "processed") == "9"
    assert client.hget(f"{prefix}:stream:stats", "processed") == "2"


def test_an_experiments_per_customer_hashes_become_each_customers_state(isolated: Isolated) -> None:
    client, keys, prefix = isolated.redis, isolated.keys, isolated.keys.prefix
    client.hset(f"{prefix}:ab:x:groups", mapping={"c1": "control", "c2": "treatment"})
    client.hset(f"{prefix}:ab:x:revenue", "c1", 1250)
    client.hset(f"{prefix}:ab:x:pre", "c2", 300)
    client.hset(f"{prefix}:ab:x:propensity", "c2", "0.25")
    client.hset(f"{prefix}:ab:x:control:first", mapping={"exposed:c1": 100, "converted:c1": 150})
    client.hset(f"{prefix}:ab:x:treatment:first", "exposed:c2", 90)
    client.sadd(f"{prefix}:ab:x:control:exposed", "c1")
    client.sadd(f"{prefix}:ab:x:control:converted", "c1")
    client.sadd(f"{prefix}:ab:x:treatment:exposed", "c2")
    client.hset(f"{prefix}:ab:x:control:counters", mapping={"exposures": 3, "revenue_cents": 1250})

    result = migrate(client, prefix)
    assert (result.experiments, result.conflicts) == (1, 0)
    assert client.hgetall(keys.ab_customer_state("x", "c1")) == {
        "group": "control", "revenue": "1250", "exposed_at": "100", "converted_at": "150"}
    assert client.hgetall(keys.ab_customer_state("x", "c2")) == {
        "group": "treatment", "pre": "300", "propensity": "0.25", "exposed_at": "90"}
    assert client.smembers(keys.ab_customer_experiments("c1")) == {"x"}
    assert client.hgetall(keys.ab_group_counters("x", "control")) == {
        "exposures": "3", "revenue_cents": "1250", "exposed_customers": "1", "converted_customers": "1"}
    assert client.hgetall(keys.ab_group_counters("x", "treatment")) == {
        "exposed_customers": "1", "converted_customers": "0"}
    left = sorted(client.scan_iter(match=f"{prefix}:ab:x:*"))
    assert left == sorted([keys.ab_customer_state("x", "c1"), keys.ab_customer_state("x", "c2"),
                           keys.ab_group_counters("x", "control"), keys.ab_group_counters("x", "treatment")])
    assert migrate(client, prefix) == type(result)(0, len(list(client.scan_iter(match=f"{prefix}:*"))), 0, 0)


def test_a_published_versions_per_customer_hashes_are_split_by_slot(isolated: Isolated) -> None:
    client, keys, prefix = isolated.redis, isolated.keys, isolated.keys.prefix
    customers = [f"c{i}" for i in range(50)]
    client.zadd(f"{prefix}:model:versions", {"v1": 1.0})
    client.hset(f"{prefix}:model:v1:topn", mapping={c: f"p-{c}|1|r" for c in customers})
    client.hset(f"{prefix}:model:v1:segments", mapping={c: '{"segment": "loyal"}' for c in customers})
    assert migrate(client, prefix).version_hashes == 2
    assert all(client.hget(keys.model_topn("v1", c), c) == f"p-{c}|1|r" for c in customers)
    assert all(client.hget(keys.model_segments("v1", c), c) == '{"segment": "loyal"}' for c in customers)
    assert not client.exists(f"{prefix}:model:v1:topn", f"{prefix}:model:v1:segments")
    assert len(list(client.scan_iter(match=keys.model_per_customer_pattern("v1", "topn")))) > 40

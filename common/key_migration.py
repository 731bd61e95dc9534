"""From the key layout of single Redis before hash tags (issue 23) to the one `common.keys` builds, in place.

Two steps. First every key is renamed: a customer's keys get their id as hash tag, the shared ones the shared tag.
Old names are told from new ones by their shape: ids, experiment names and arms hold no ':' and no brace, so a key
splits into its parts unambiguously; a key already in the new layout, or not one of ours, is left alone. Then each
experiment's per-customer hashes, which lived in the shared slot (the customers' arms, attributed revenue,
pre-period spend, propensity, first exposure and conversion times), are split into one state hash per customer,
each customer learns their experiments, and the sets of exposed and converted customers become counts in the arm's
counters. Last, each published version's per-customer hashes (top-N lists, segments, cycles), one key each before,
are split into one hash per slot. Every write sets a value (none adds), and old keys go last, so an interrupted
migration is finished by running it again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import cast

import redis

from common.keys import SHARED_TAG, VERSION_PER_CUSTOMER_PARTS, KeyLayout, customer_tag

# The shared keys that are not per experiment, as the parts after the prefix.
SHARED = frozenset({
    ("customers",), ("prod", "pop"), ("prod", "cat"), ("prod", "catalogue"), ("prod", "catalogue", "rev"),
    ("stream", "dead_letter_ids"), ("stream", "stats"), ("stream", "freshness"), ("stream", "latest"),
    ("batch", "refit_requested"), ("model", "current"), ("model", "versions"), ("ab", "experiments"),
    ("ab", "experiments", "rev"), ("ab", "ended"), ("ab", "plans"), ("ab", "live"),
})
PER_EXPERIMENT = frozenset({"groups", "revenue", "pre", "propensity", "weights"})  # ab:<experiment>:<name>
PER_ARM = frozenset({"counters", "exposed", "converted", "daily", "first"})  # ab:<experiment>:<arm>:<name>
PER_CUSTOMER_FIELD = {"groups": "group", "revenue": "revenue", "pre": "pre", "propensity": "propensity"}
RENAMES_AT_ONCE = 500
WRITES_AT_ONCE = 1000


def new_name(prefix: str, key: str) -> str | None:
    """The key's name in the tagged layout; None when it is in it already or is not a key of the stream's state."""
    head, _, rest = key.partition(":")
    if head != prefix or "{" in rest:
        return None
    parts = tuple(rest.split(":"))
    tagged: tuple[str, ...] | None = None
    if parts in SHARED:
        tagged = (*parts, SHARED_TAG)
    elif len(parts) == 3 and parts[0] == "cust":
        tagged = ("cust", customer_tag(parts[1]), parts[2])
    elif len(parts) == 4 and parts[:2] == ("ab", "cust"):
        tagged = ("ab", "cust", customer_tag(parts[2]), parts[3])
    elif len(parts) == 5 and parts[0] == "ab" and parts[2] == "cust":
        tagged = ("ab", parts[1], "cust", customer_tag(parts[3]), parts[4])
    elif (len(parts) == 3 and parts[0] == "ab" and parts[2] in PER_EXPERIMENT) or (
            len(parts) == 4 and parts[0] == "ab" and parts[3] in PER_ARM):
        tagged = (*parts, SHARED_TAG)
    return ":".join((prefix, *tagged)) if tagged else None


@dataclass(frozen=True)
class Migrated:
    renamed: int
    scanned: int
    conflicts: int  # old keys whose new name was taken already: both kept, to be looked at by hand
    experiments: int = 0  # whose per-customer hashes were split per customer
    version_hashes: int = 0  # a version's per-customer hashes split per slot


def migrate(client: redis.Redis, prefix: str, on_progress: Callable[[int, int], None] | None = None) -> Migrated:
    """Rename every key of `prefix` in the old layout to its new name (single Redis: RENAME moves a key between
    slots only there), then split the experiments' per-customer hashes. Run it while nothing writes the state:
    stop the stream worker and the API first."""
    renamed = _rename_all(client, prefix, on_progress)
    experiments = _old_experiments(client, prefix)
    keys = KeyLayout(prefix)
    for experiment, arms in experiments.items():
        _split_experiment(client, keys, experiment, arms)
    split = _split_versions(client, keys)
    return Migrated(renamed.renamed, renamed.scanned, renamed.conflicts, len(experiments), split)


def _rename_all(client: redis.Redis, prefix: str, on_progress: Callable[[int, int], None] | None) -> Migrated:
    renamed = scanned = conflicts = 0
    batch: list[tuple[str, str]] = []
    for key in _names(client.scan_iter(match=f"{prefix}:*", count=1000)):
        scanned += 1
        target = new_name(prefix, key)
        if target is not None:
            batch.append((key, target))
        if len(batch) >= RENAMES_AT_ONCE:
            done = _rename(client, batch)
            renamed, conflicts, batch = renamed + done, conflicts + len(batch) - done, []
            if on_progress:
                on_progress(renamed, scanned)
    done = _rename(client, batch)
    renamed, conflicts = renamed + done, conflicts + len(batch) - done
    if on_progress:
        on_progress(renamed, scanned)
    return Migrated(renamed, scanned, conflicts)


def _names(keys: Iterable[bytes | str]) -> Iterable[str]:
    return (key.decode() if isinstance(key, bytes) else key for key in keys)


def _rename(client: redis.Redis, pairs: list[tuple[str, str]]) -> int:
    """RENAMENX: a key the new layout holds already (a worker of the new version ran before the migration) is not
    overwritten; the old one stays. Returns how many were renamed."""
    pipe = client.pipeline(transaction=False)
    for old, new in pairs:
        pipe.renamenx(old, new)
    return sum(1 for done in pipe.execute(raise_on_error=False) if done is True or done == 1)


def _old_key(keys: KeyLayout, *parts: str) -> str:
    """A renamed key of the layout before the per-customer A/B state."""
    return ":".join((keys.prefix, "ab", *parts, SHARED_TAG))


def _old_experiments(client: redis.Redis, prefix: str) -> dict[str, set[str]]:
    """The experiments with keys of the old A/B layout (after the renames), and the arms those name."""
    found: dict[str, set[str]] = {}
    for key in _names(client.scan_iter(match=f"{prefix}:ab:*:{SHARED_TAG}", count=1000)):
        parts = key.split(":")[2:-1]
        if len(parts) == 2 and parts[1] in PER_CUSTOMER_FIELD:
            found.setdefault(parts[0], set())
        elif len(parts) == 3 and parts[2] in {"exposed", "converted", "first"}:
            found.setdefault(parts[0], set()).add(parts[1])
    return found


def _split_experiment(client: redis.Redis, keys: KeyLayout, experiment: str, arms: set[str]) -> None:
    writes = client.pipeline(transaction=False)
    for old_name, field in PER_CUSTOMER_FIELD.items():
        for customer, value in _hash_items(client, _old_key(keys, experiment, old_name)):
            writes.hset(keys.ab_customer_state(experiment, customer), field, value)
            if field == "group":
                writes.sadd(keys.ab_customer_experiments(customer), experiment)
            _flush_when_full(writes)
    for arm in sorted(arms):
        for kind_customer, ts in _hash_items(client, _old_key(keys, experiment, arm, "first")):
            kind, _, customer = kind_customer.partition(":")
            writes.hset(keys.ab_customer_state(experiment, customer), f"{kind}_at", ts)
            _flush_when_full(writes)
        writes.hset(keys.ab_group_counters(experiment, arm), mapping={
            "exposed_customers": client.scard(_old_key(keys, experiment, arm, "exposed")),
            "converted_customers": client.scard(_old_key(keys, experiment, arm, "converted"))})
    writes.execute()
    per_arm = ("exposed", "converted", "first")
    client.unlink(*(_old_key(keys, experiment, name) for name in PER_CUSTOMER_FIELD),
                  *(_old_key(keys, experiment, arm, kind) for arm in arms for kind in per_arm))


def _split_versions(client: redis.Redis, keys: KeyLayout) -> int:
    """Each published version's per-customer hashes into one hash per slot, the old one deleted after."""
    split = 0
    key_of = {"topn": keys.model_topn, "segments": keys.model_segments, "cycles": keys.model_cycles}
    for version in (_text(v) for v in cast(list[bytes], client.zrange(keys.model_versions(), 0, -1))):
        for part in VERSION_PER_CUSTOMER_PARTS:
            old = keys.model_key(version, part)
            if not client.exists(old):
                continue
            writes = client.pipeline(transaction=False)
            for customer, value in _hash_items(client, old):
                writes.hset(key_of[part](version, customer), customer, value)
                _flush_when_full(writes)
            writes.execute()
            client.unlink(old)
            split += 1
    return split


def _hash_items(client: redis.Redis, key: str) -> Iterable[tuple[str, str]]:
    for field, value in client.hscan_iter(key, count=1000):
        yield _text(field), _text(value)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _flush_when_full(pipe: redis.client.Pipeline) -> None:
    if len(pipe) >= WRITES_AT_ONCE:
        pipe.execute()

"""From the key layout of single Redis before hash tags (issue 23) to the one `common.keys` builds, in place.

Old names are told from new ones by their shape: ids, experiment names and arms hold no ':' and no brace, so a key
splits into its parts unambiguously. A key already in the new layout, or not one of ours, is left alone, so the
migration can be run again (an interrupted one is finished by running it again).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import redis

from common.keys import SHARED_TAG, customer_tag

# The shared keys that are not per experiment, as the parts after the prefix.
SHARED = frozenset({
    ("customers",), ("prod", "pop"), ("prod", "cat"), ("prod", "catalogue"), ("prod", "catalogue", "rev"),
    ("stream", "dead_letter_ids"), ("stream", "stats"), ("stream", "freshness"), ("stream", "latest"),
    ("batch", "refit_requested"), ("model", "current"), ("model", "versions"), ("ab", "experiments"),
    ("ab", "experiments", "rev"), ("ab", "ended"), ("ab", "plans"), ("ab", "live"),
})
PER_EXPERIMENT = frozenset({"groups", "revenue", "pre", "propensity", "weights"})  # ab:<experiment>:<name>
PER_ARM = frozenset({"counters", "exposed", "converted", "daily", "first"})  # ab:<experiment>:<arm>:<name>
RENAMES_AT_ONCE = 500


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


def migrate(client: redis.Redis, prefix: str, on_progress: Callable[[int, int], None] | None = None) -> Migrated:
    """Rename every key of `prefix` in the old layout to its new name (single Redis: RENAME moves a key between
    slots only there). Safe to run while nothing writes the state: stop the stream worker and the API first."""
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

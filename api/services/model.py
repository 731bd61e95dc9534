"""What the model's routes read from Redis: a published version's card, segments, offers and rules, the kept
versions, and where the latest buyers moved since the model. The routes shape the answers; these read."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, cast

from redis.exceptions import RedisError

from api.model_cache import ModelView
from api.services.customers import live_segment_of, movement
from api.state import ApiState


class RedisUnreachable(Exception):
    """Redis did not answer; the message says why."""


async def current_version(state: ApiState) -> str | None:
    """The version readers use, or None before the first publish; `RedisUnreachable` when Redis is away."""
    try:
        current = await state.redis.get(state.keys.model_current())
    except (RedisError, OSError) as exc:
        raise RedisUnreachable(str(exc)) from exc
    return current.decode() if isinstance(current, bytes) else current


async def card(state: ApiState, version: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(await state.redis.get(state.keys.model_card(version)) or "{}")
    return loaded


async def segment_summary(state: ApiState, version: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(await state.redis.get(state.keys.model_segment_summary(version)) or "[]")
    return rows


async def segment_offer(state: ApiState, version: str, name: str) -> dict[str, Any] | None:
    raw = await state.redis.hget(state.keys.model_segment_offers(version), name)
    return json.loads(raw) if raw is not None else None


@dataclass(frozen=True)
class KeptVersion:
    version: str
    published_at: float
    current: bool
    card: dict[str, Any]


async def kept_versions(state: ApiState) -> list[KeptVersion]:
    """Every kept version, newest first, with its card."""
    keys = state.keys
    entries = cast(list[tuple[bytes, float]], await state.redis.zrevrange(keys.model_versions(), 0, -1,
                                                                        withscores=True))
    current = await state.redis.get(keys.model_current())
    pipe = state.redis.pipeline(transaction=False)
    for version, _ in entries:
        pipe.get(keys.model_card(version.decode()))
    cards = await pipe.execute()
    return [KeptVersion(version.decode(), published_at, version == current, json.loads(raw or "{}"))
            for (version, published_at), raw in zip(entries, cards, strict=True)]


async def category_rules(state: ApiState, version: str) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = json.loads(await state.redis.get(state.keys.model_category_rules(version)) or "[]")
    return rules


async def product_rules(state: ApiState, view: ModelView) -> list[dict[str, Any]]:
    """All pair rules as antecedent -> consequent rows, read once per version and process."""
    if view.all_rules is None:
        raw = cast(dict[bytes, bytes], await state.redis.hgetall(state.keys.model_rules(view.version)))
        view.all_rules = [
            {"antecedents": [a.decode()], "consequents": [r["product_id"]], "support": r["support"],
             "confidence": r["confidence"], "lift": r["lift"]}
            for a, rs in raw.items() for r in json.loads(rs)
        ]
    for row in view.all_rules:
        row["names"] = [view.products.get(p, {}).get("name") for p in row["antecedents"] + row["consequents"]]
    return view.all_rules


async def rules_from(state: ApiState, version: str, product_id: str) -> list[dict[str, Any]]:
    """The rules with this product as the antecedent."""
    rules: list[dict[str, Any]] = json.loads(await state.redis.hget(state.keys.model_rules(version), product_id)
                                             or "[]")
    return rules


@dataclass(frozen=True)
class Movement:
    customers: int
    limited: bool
    moves: list[dict[str, Any]]


async def segment_movement(state: ApiState, view: ModelView, max_customers: int) -> Movement:
    """The most recent buyers since the model (at most `max_customers`, in one pipelined round trip): their
    segment in the model against the segment of their live RFM, counted per pair."""
    keys = state.keys
    recent = cast(list[bytes], await state.redis.zrevrangebyscore(
        keys.customers_index(), "+inf", f"({view.data_end_ts}", start=0, num=max_customers + 1))
    ids = [customer.decode() for customer in recent]
    limited, ids = len(ids) > max_customers, ids[:max_customers]
    if not ids or view.cut_points is None:
        return Movement(len(ids), limited, [])
    pipe = state.redis.pipeline(transaction=False)
    pipe.hget(keys.stream_stats(), "last_event_ts")
    for customer in ids:
        pipe.hget(keys.model_segments(view.version, customer), customer)
    for customer in ids:
        pipe.hgetall(keys.customer_rfm(customer))
    stats_last, *replies = await pipe.execute()
    last_night_raw, rfms = replies[:len(ids)], replies[len(ids):]
    as_of = int(float(stats_last)) if stats_last else int(time.time())
    live = [live_segment_of({k.decode(): v.decode() for k, v in rfm.items()}, as_of, view.cut_points)
            for rfm in rfms]
    return Movement(len(ids), limited, movement(
        [json.loads(raw)["segment"] if raw else None for raw in last_night_raw],
        [now.segment["segment"] if now is not None and now.segment else None for now in live]))


async def request_refit(state: ApiState, requested_at: float) -> None:
    """Ask the nightly scheduler to fit and publish now (it runs one and deletes the request)."""
    await state.redis.set(state.keys.batch_refit_requested(), requested_at)

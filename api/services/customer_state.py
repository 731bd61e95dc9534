"""What the customer routes read from Redis: the stream's live state of one customer beside what the published
model holds for them, and what they were shown in the experiments."""

from __future__ import annotations

from dataclasses import dataclass

from api.model_cache import ModelView
from api.services.ab import experiment_starts
from api.state import ApiState

Scored = list[tuple[bytes, float]]


@dataclass(frozen=True)
class CustomerState:
    rfm: dict[str, str]
    recent: Scored  # product -> last purchase time, newest first
    categories: dict[str, int]
    profile: dict[str, str]
    stream_clock: float | None  # the stream's latest event time: history time in a replay
    segment: bytes | None  # the published version's JSON segment
    cycles: bytes | None  # the published version's buy cycles

    @property
    def known(self) -> bool:
        return bool(self.rfm) or self.segment is not None or bool(self.profile)


async def read_customer(state: ApiState, customer_id: str, view: ModelView | None, recent_n: int) -> CustomerState:
    """One pipelined round trip."""
    keys = state.keys
    pipe = state.redis.pipeline(transaction=False)
    pipe.hgetall(keys.customer_rfm(customer_id))
    pipe.zrevrange(keys.customer_recent(customer_id), 0, recent_n - 1, withscores=True)
    pipe.hgetall(keys.customer_categories(customer_id))
    pipe.hgetall(keys.customer_profile(customer_id))
    pipe.hget(keys.stream_stats(), "last_event_ts")
    if view is not None:
        pipe.hget(keys.model_segments(view.version, customer_id), customer_id)
        pipe.hget(keys.model_cycles(view.version, customer_id), customer_id)
    rfm, recent, categories, profile, stats_last, *published = await pipe.execute()
    segment, cycles = published if published else (None, None)
    return CustomerState(rfm=_text(rfm), recent=recent, categories={k.decode(): int(v) for k, v in categories.items()},
                         profile=_text(profile), stream_clock=float(stats_last) if stats_last else None,
                         segment=segment, cycles=cycles)


@dataclass(frozen=True)
class Shown:
    bought: Scored  # 'product|event id|cents' -> purchase time
    shown: Scored  # an exposure's member (`shown_products`) -> its time, newest first, every experiment together
    group: str | None


async def read_exposures(state: ApiState, customer_id: str, shown_n: int) -> Shown:
    keys = state.keys
    experiments = await experiment_starts(state)
    pipe = state.redis.pipeline(transaction=False)
    pipe.zrange(keys.ab_customer_purchases(customer_id), 0, -1, withscores=True)
    for experiment in experiments:
        pipe.zrevrange(keys.ab_customer_exposures(experiment, customer_id), 0, shown_n - 1, withscores=True)
        pipe.hget(keys.ab_customer_state(experiment, customer_id), "group")
    bought, *per_experiment = await pipe.execute()
    # the same salt assigns the customer the same group in every experiment; the newest exposures first
    shown = sorted((row for rows in per_experiment[0::2] for row in rows), key=lambda r: -r[1])[:shown_n]
    group = next((g for g in per_experiment[1::2] if g), None)
    return Shown(bought, shown, group.decode() if group else None)


def shown_products(member: str) -> list[str]:
    """The products of one member of a customer's exposures, as the stream writes them (apply_exposures.lua):
    '<request id> <product> ...', or 'product|request id' as it wrote them before (they age out)."""
    if "|" in member:
        return [member.split("|")[0]]
    return member.split(" ")[1:]


def _text(raw: dict[bytes, bytes]) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in raw.items()}

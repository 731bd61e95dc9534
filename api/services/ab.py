"""The A/B experiment as the stream has counted it: the summary behind `/ab/summary` (also the replay's result)
and the daily series behind `/ab/timeline`."""

from __future__ import annotations

from datetime import date, timedelta

from api.schemas import AbSummary, AbTimeline, DailyConversion, GroupResult
from api.state import ApiState
from common.ab import Group, proportion_interval, two_proportions

GROUPS: tuple[Group, Group] = ("control", "treatment")
EPOCH = date(1970, 1, 1)


async def read_summary(state: ApiState) -> AbSummary:
    """Conversion per group (customers who bought an exposed product within the attribution window), uplift,
    its 95% interval and the two-proportion z-test."""
    keys, experiment = state.keys, state.settings.ab_experiment
    pipe = state.redis.pipeline(transaction=False)
    for group in GROUPS:
        pipe.hgetall(keys.ab_group_counters(experiment, group))
        pipe.scard(keys.ab_exposed_customers(experiment, group))
        pipe.scard(keys.ab_converted_customers(experiment, group))
    raw = await pipe.execute()
    groups = {}
    for i, group in enumerate(GROUPS):
        counters = {k.decode(): float(v) for k, v in raw[3 * i].items()}
        exposed, converted = int(raw[3 * i + 1]), int(raw[3 * i + 2])
        groups[group] = GroupResult(
            exposed_customers=exposed, converted_customers=converted, exposures=int(counters.get("exposures", 0)),
            converted_items=int(counters.get("converted_items", 0)),
            revenue=round(counters.get("revenue_cents", 0) / 100, 2),
            conversion_rate=converted / exposed if exposed else 0.0,
        )
    race = two_proportions(groups["control"].converted_customers, groups["control"].exposed_customers,
                           groups["treatment"].converted_customers, groups["treatment"].exposed_customers)
    return AbSummary(
        experiment=experiment, treatment_percent=state.settings.ab_treatment_percent,
        attribution_days=state.settings.ab_attribution_days, groups=groups,
        absolute_uplift=race.absolute_uplift, relative_uplift=race.relative_uplift,
        ci_low=_finite(race.ci_low), ci_high=_finite(race.ci_high), z=race.z, p_value=race.p_value,
        exposures_lost=state.exposures.lost,
    )


async def read_timeline(state: ApiState) -> AbTimeline:
    """Conversion per group over event-time days: cumulative customers exposed and converted (each counted on
    the day of their first exposure / first conversion), the rate and its 95% interval."""
    keys, experiment = state.keys, state.settings.ab_experiment
    pipe = state.redis.pipeline(transaction=False)
    for group in GROUPS:
        pipe.hgetall(keys.ab_daily(experiment, group))
    daily = await pipe.execute()
    series = {}
    for group, raw in zip(GROUPS, daily, strict=True):
        counts: dict[int, dict[str, int]] = {}
        for field, value in raw.items():
            kind, day = field.decode().split(":")
            counts.setdefault(int(day), {"exposed": 0, "converted": 0})[kind] = int(value)
        exposed = converted = 0
        rows = []
        for day in sorted(counts):
            exposed += counts[day]["exposed"]
            converted += counts[day]["converted"]
            low, high = proportion_interval(converted, exposed)
            rows.append(DailyConversion(date=EPOCH + timedelta(days=day), exposed=exposed, converted=converted,
                                        rate=converted / exposed if exposed else 0.0, ci_low=low, ci_high=high))
        series[group] = rows
    return AbTimeline(experiment=experiment, series=series)


def _finite(value: float) -> float | None:
    return None if value != value else value

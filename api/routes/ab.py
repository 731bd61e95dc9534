from __future__ import annotations

from fastapi import APIRouter

from api.deps import State
from api.schemas import AbSummary, GroupResult
from api.state import ApiState
from common.ab import two_proportions

router = APIRouter(tags=["ab"])
GROUPS = ("control", "treatment")


@router.get("/ab/summary", response_model=AbSummary)
async def ab_summary(state: State) -> AbSummary:
    """Conversion per group (customers who bought an exposed product within the attribution window), uplift,
    its 95% interval and the two-proportion z-test."""
    return await read_summary(state)


async def read_summary(state: ApiState) -> AbSummary:
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


def _finite(value: float) -> float | None:
    return None if value != value else value

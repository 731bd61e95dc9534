"""Demographic cold start: a customer the model has not seen, but whose profile is known, is shown the
best-sellers of their cohort (region and age band, falling back to region, then age band), topped up with the
shop's. Only versions whose offline check found cohorts better than the global list publish cohort lists, so
with none published this changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

from api.model_cache import ModelView
from api.ranking import Ranked, reason_for
from api.state import ApiState
from common.i18n import Gettext, english
from common.profiles import cohort_best_sellers, cohort_chain, cohort_reason, profile_view


async def cohort_cold_start(state: ApiState, view: ModelView, customer_id: str, k: int,
                            gettext: Gettext = english) -> list[Ranked] | None:
    """The cohort list for this customer, or None (no cohorts published, no profile, no cohort of theirs)."""
    if not view.cohorts:
        return None
    raw = cast(dict[bytes, bytes], await state.redis.hgetall(state.keys.customer_profile(customer_id)))
    return rank_for_profile({f.decode(): v.decode() for f, v in raw.items()}, view, k, gettext)


def rank_for_profile(profile: dict[str, str], view: ModelView, k: int,
                     gettext: Gettext = english) -> list[Ranked] | None:
    """Pure: the cohort's best-sellers first (reason: the cohort), then the shop's. Ages are taken on the day the
    model's data ends, as the batch took them when it counted the cohorts."""
    if not profile:
        return None
    shown = profile_view(profile, datetime.fromtimestamp(view.data_end_ts, UTC).date())
    chain = cohort_chain(cast(str | None, shown["region"]), cast(str | None, shown["age_band"]))
    items = cohort_best_sellers(chain, view.cohorts, view.popular, k)
    if not items or items[0][2] is None:
        return None
    return [Ranked(product, round(1 - i / len(items), 5), "cohort" if key else "popular",
                   cohort_reason(key, gettext) if key else reason_for("popular", view.trend_days, gettext=gettext))
            for i, (product, _buyers, key) in enumerate(items)]

from __future__ import annotations

import json
import time

from fastapi import APIRouter, HTTPException

from api.deps import CustomerIdPath, RequestLanguage, State
from api.schemas import BuyCycle, CustomerExposures, CustomerView, LiveSegment, Profile, Purchase, ShownProduct
from api.services.ab import experiment_starts
from api.services.customers import buy_cycle, live_segment_of, profile_of
from common.i18n import translations
from common.segments import words

router = APIRouter(tags=["customers"])
RECENT_SHOWN = 20
EXPOSURES_SHOWN = 50


@router.get("/customers/{customer_id}", response_model=CustomerView, responses={404: {"description": "unknown"}})
async def customer(state: State, customer_id: CustomerIdPath, language: RequestLanguage) -> CustomerView:
    """Live RFM state from the stream, last night's segment from the published model beside the segment of the
    live RFM (scored with the model's quintile edges), each with its words in the request's language, the
    profile, recent purchases."""
    keys = state.keys
    view = await state.models.get()
    pipe = state.redis.pipeline(transaction=False)
    pipe.hgetall(keys.customer_rfm(customer_id))
    pipe.zrevrange(keys.customer_recent(customer_id), 0, RECENT_SHOWN - 1, withscores=True)
    pipe.hgetall(keys.customer_categories(customer_id))
    pipe.hgetall(keys.customer_profile(customer_id))
    # Recency and age are measured on the stream's clock (its latest event time), history time in a replay.
    pipe.hget(keys.stream_stats(), "last_event_ts")
    if view is not None:
        pipe.hget(keys.model_segments(view.version), customer_id)
        pipe.hget(keys.model_cycles(view.version), customer_id)
    rfm_raw, recent, categories, profile_raw, stats_last, *published = await pipe.execute()
    segment_raw, cycles_raw = published if published else (None, None)
    if not rfm_raw and segment_raw is None and not profile_raw:
        raise HTTPException(404, f"customer {customer_id!r} has no purchases in the stream or the model, and no "
                                 "profile")
    fields = {k.decode(): v.decode() for k, v in rfm_raw.items()}
    as_of = int(float(stats_last)) if stats_last else int(time.time())
    live = live_segment_of(fields, as_of, view.cut_points if view is not None else None)
    profile = profile_of({k.decode(): v.decode() for k, v in profile_raw.items()}, as_of)
    products = state.models.products()
    gettext = translations(language).gettext
    last_night = json.loads(segment_raw) if segment_raw else None
    last_bought = {p.decode(): ts for p, ts in recent}
    return CustomerView(
        customer_id=customer_id, as_of=as_of, rfm={k: float(v) for k, v in fields.items()},
        recency_days=live.recency_days if live is not None else None,
        segment=last_night | words(last_night["segment"], gettext) if last_night else None,
        live_segment=LiveSegment.model_validate(live.segment | {"label": words(live.segment["segment"], gettext)[
            "label"]}) if live is not None and live.segment else None,
        profile=Profile.model_validate(profile) if profile else None,
        recent=[Purchase(product_id=p.decode(), name=products.get(p.decode(), {}).get("name"),
                         category=products.get(p.decode(), {}).get("category"), last_purchased_at=ts)
                for p, ts in recent],
        categories={k.decode(): int(v) for k, v in categories.items()},
        buy_cycle=[BuyCycle.model_validate(c) for c in buy_cycle(cycles_raw, last_bought, as_of, products)],
    )


@router.get("/customers/{customer_id}/exposures", response_model=CustomerExposures)
async def exposures(state: State, customer_id: CustomerIdPath) -> CustomerExposures:
    """The latest products shown to the customer (event time), in any experiment, and whether they bought each
    one afterwards, within the attribution window."""
    keys = state.keys
    window = state.settings.ab_attribution_days * 86400
    experiments = await experiment_starts(state)
    pipe = state.redis.pipeline(transaction=False)
    pipe.zrange(keys.ab_customer_purchases(customer_id), 0, -1, withscores=True)
    for experiment in experiments:
        pipe.zrevrange(keys.ab_customer_exposures(experiment, customer_id), 0, EXPOSURES_SHOWN - 1, withscores=True)
        pipe.hget(keys.ab_customer_groups(experiment), customer_id)
    bought, *per_experiment = await pipe.execute()
    # the same salt assigns the customer the same group in every experiment; the newest exposures first
    shown = sorted((row for rows in per_experiment[0::2] for row in rows), key=lambda r: -r[1])[:EXPOSURES_SHOWN]
    group = next((g for g in per_experiment[1::2] if g), None)
    purchases: dict[str, list[float]] = {}
    for member, ts in bought:
        purchases.setdefault(member.decode().split("|")[0], []).append(ts)
    products = state.models.products()
    rows = []
    for member, shown_at in shown:
        product = member.decode().split("|")[0]
        after = [ts for ts in purchases.get(product, []) if shown_at <= ts <= shown_at + window]
        rows.append(ShownProduct(product_id=product, name=products.get(product, {}).get("name"),
                                 shown_at=shown_at, bought_at=min(after) if after else None))
    return CustomerExposures(customer_id=customer_id, group=group.decode() if group else None, shown=rows)

from __future__ import annotations

import json
import time

from fastapi import APIRouter, HTTPException

from api.deps import CustomerIdPath, RequestLanguage, State
from api.schemas import BuyCycle, CustomerExposures, CustomerView, LiveSegment, Profile, Purchase, ShownProduct
from api.services.customer_state import read_customer, read_exposures, shown_products
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
    view = await state.models.get()
    found = await read_customer(state, customer_id, view, RECENT_SHOWN)
    if not found.known:
        raise HTTPException(404, f"customer {customer_id!r} has no purchases in the stream or the model, and no "
                                 "profile")
    # Recency and age are measured on the stream's clock (its latest event time), history time in a replay.
    as_of = int(found.stream_clock) if found.stream_clock is not None else int(time.time())
    live = live_segment_of(found.rfm, as_of, view.cut_points if view is not None else None)
    profile = profile_of(found.profile, as_of)
    recent = found.recent
    products = state.models.products()
    gettext = translations(language).gettext
    last_night = json.loads(found.segment) if found.segment else None
    last_bought = {p.decode(): ts for p, ts in recent}
    return CustomerView(
        customer_id=customer_id, as_of=as_of, rfm={k: float(v) for k, v in found.rfm.items()},
        recency_days=live.recency_days if live is not None else None,
        segment=last_night | words(last_night["segment"], gettext) if last_night else None,
        live_segment=LiveSegment.model_validate(live.segment | {"label": words(live.segment["segment"], gettext)[
            "label"]}) if live is not None and live.segment else None,
        profile=Profile.model_validate(profile) if profile else None,
        recent=[Purchase(product_id=p.decode(), name=products.get(p.decode(), {}).get("name"),
                         category=products.get(p.decode(), {}).get("category"), last_purchased_at=ts)
                for p, ts in recent],
        categories=found.categories,
        buy_cycle=[BuyCycle.model_validate(c) for c in buy_cycle(
            found.cycles.decode() if found.cycles else None, last_bought, as_of, products)],
    )


@router.get("/customers/{customer_id}/exposures", response_model=CustomerExposures)
async def exposures(state: State, customer_id: CustomerIdPath) -> CustomerExposures:
    """The latest products shown to the customer (event time), in any experiment, and whether they bought each
    one afterwards, within the attribution window."""
    window = state.settings.ab_attribution_days * 86400
    found = await read_exposures(state, customer_id, EXPOSURES_SHOWN)
    purchases: dict[str, list[float]] = {}
    for member, ts in found.bought:
        purchases.setdefault(member.decode().split("|")[0], []).append(ts)
    products = state.models.products()
    rows = []
    for member, shown_at in found.shown:
        for product in shown_products(member.decode()):
            after = [ts for ts in purchases.get(product, []) if shown_at <= ts <= shown_at + window]
            rows.append(ShownProduct(product_id=product, name=products.get(product, {}).get("name"),
                                     shown_at=shown_at, bought_at=min(after) if after else None))
    return CustomerExposures(customer_id=customer_id, group=found.group, shown=rows[:EXPOSURES_SHOWN])

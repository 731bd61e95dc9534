from __future__ import annotations

import json
import time
from typing import Annotated, Any, Literal, cast

from fastapi import APIRouter, HTTPException, Path, Query

from api.deps import CurrentModel, RequestLanguage, State
from api.model_cache import ModelView
from api.schemas import (
    AssociationRule,
    AssociationRules,
    ModelCard,
    ModelVersion,
    ModelVersions,
    ProductAssociationRule,
    SegmentMove,
    SegmentMovement,
    SegmentOffer,
    Segments,
)
from api.services.customers import NEW_TO_MODEL, live_segment_of, movement
from api.state import ApiState
from common.i18n import translations
from common.segments import RULES_BY_NAME, suggested_action, words

router = APIRouter(tags=["model"])


# Only the keys the stored card has: one without, say, `eda` is not answered with `"eda": null`.
@router.get("/model", response_model=ModelCard, response_model_exclude_unset=True,
            responses={503: {"description": "no model"}})
async def model(state: State, view: CurrentModel) -> ModelCard:
    """The current version's model card: data window, parameters, offline metrics, EDA and cleaning."""
    return ModelCard.model_validate(json.loads(await state.redis.get(state.keys.model_card(view.version)) or "{}"))


@router.get("/segments", response_model=Segments, responses={503: {"description": "no model"}})
async def segments(state: State, view: CurrentModel, language: RequestLanguage) -> Segments:
    """Size, share and mean recency / frequency / monetary per RFM segment; its label, description and action in
    the language the request accepts (Spanish or English)."""
    raw = await state.redis.get(state.keys.model_segment_summary(view.version))
    gettext = translations(language).gettext
    rows = [row | words(row["segment"], gettext) for row in json.loads(raw or "[]")]
    return Segments(model_version=view.version, segments=rows)


# A page's worth of work: the most recent buyers since the model, in one pipelined round trip.
MOVEMENT_MAX_CUSTOMERS = 20_000


# Declared before /segments/{name}, which would otherwise take "movement" for a segment's name.
@router.get("/segments/movement", response_model=SegmentMovement, responses={503: {"description": "no model"}})
async def segment_movement(state: State, view: CurrentModel, language: RequestLanguage) -> SegmentMovement:
    """Where the customers who bought since last night's model stand now: from their segment in the model to the
    segment of their live RFM (scored with the model's quintile edges), counted per pair. The most recent
    20,000 buyers at most."""
    keys = state.keys
    since = view.data_end_ts
    recent = cast(list[bytes], await state.redis.zrevrangebyscore(
        keys.customers_index(), "+inf", f"({since}", start=0, num=MOVEMENT_MAX_CUSTOMERS + 1))
    ids = [customer.decode() for customer in recent]
    limited, ids = len(ids) > MOVEMENT_MAX_CUSTOMERS, ids[:MOVEMENT_MAX_CUSTOMERS]
    moves: list[dict[str, Any]] = []
    if ids and view.cut_points is not None:
        pipe = state.redis.pipeline(transaction=False)
        pipe.hget(keys.stream_stats(), "last_event_ts")
        pipe.hmget(keys.model_segments(view.version), ids)
        for customer in ids:
            pipe.hgetall(keys.customer_rfm(customer))
        stats_last, last_night_raw, *rfms = await pipe.execute()
        as_of = int(float(stats_last)) if stats_last else int(time.time())
        live = [live_segment_of({k.decode(): v.decode() for k, v in rfm.items()}, as_of, view.cut_points)
                for rfm in rfms]
        moves = movement([json.loads(raw)["segment"] if raw else None for raw in last_night_raw],
                         [now.segment["segment"] if now is not None and now.segment else None for now in live])
    gettext = translations(language).gettext
    new_label = gettext("new to the model")
    return SegmentMovement(
        model_version=view.version, since=since, customers=len(ids), limited=limited,
        moves=[SegmentMove(**move, from_label=new_label if move["from_segment"] == NEW_TO_MODEL
                           else words(move["from_segment"], gettext)["label"],
                           to_label=words(move["to_segment"], gettext)["label"]) for move in moves])


@router.get("/segments/{name}", response_model=SegmentOffer,
            responses={404: {"description": "no such segment"}, 503: {"description": "no model"}})
async def segment_offer(
    state: State, view: CurrentModel, language: RequestLanguage,
    name: Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[a-z_]+$")],
) -> SegmentOffer:
    """What to offer one segment: over-represented products and categories (lift with its counts), the segment's
    share of revenue and a suggested action (in the language the request accepts). Product names from the live
    catalogue when it has them."""
    raw = await state.redis.hget(state.keys.model_segment_offers(view.version), name)
    if raw is None:
        raise HTTPException(404, f"segment {name!r} has no offer in model {view.version}")
    offer = json.loads(raw)
    products = state.models.products()
    for row in offer["products"]:
        row.update({k: v for k, v in products.get(row["product_id"], {}).items() if k in ("name", "category")})
    gettext = translations(language).gettext
    told = words(name, gettext)
    if name in RULES_BY_NAME:
        told["action"] = suggested_action(name, offer["categories"], gettext)
    return SegmentOffer.model_validate(offer | told | {"model_version": view.version})


@router.get("/model/versions", response_model=ModelVersions)
async def versions(state: State) -> ModelVersions:
    """Every kept version, newest first, with its publish time, data window and headline metrics."""
    entries = cast(list[tuple[bytes, float]],
                   await state.redis.zrevrange(state.keys.model_versions(), 0, -1, withscores=True))
    current = await state.redis.get(state.keys.model_current())
    pipe = state.redis.pipeline(transaction=False)
    for version, _ in entries:
        pipe.get(state.keys.model_card(version.decode()))
    cards = await pipe.execute()
    rows = []
    for (version, published_at), raw in zip(entries, cards, strict=True):
        card = json.loads(raw or "{}")
        rows.append(ModelVersion(version=version.decode(), published_at=published_at, current=version == current,
                                 data_window=card.get("data_window"), headline=card.get("headline")))
    return ModelVersions(versions=rows)


@router.get("/rules", response_model=AssociationRules, responses={503: {"description": "no model"}})
async def rules(
    state: State,
    view: CurrentModel,
    level: Annotated[Literal["product", "category"], Query()] = "product",
    sort: Annotated[Literal["lift", "confidence", "support"], Query()] = "lift",
    min_confidence: Annotated[float, Query(ge=0, le=1)] = 0.0,
    min_lift: Annotated[float, Query(ge=0, le=1e6)] = 0.0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> AssociationRules:
    """The published association rules, filtered and sorted."""
    rule: type[AssociationRule]
    if level == "category":
        found = json.loads(await state.redis.get(state.keys.model_category_rules(view.version)) or "[]")
        rule = AssociationRule
    else:
        found = await _product_rules(state, view)
        rule = ProductAssociationRule
    kept = [r for r in found if r["confidence"] >= min_confidence and r["lift"] >= min_lift]
    kept.sort(key=lambda r: -float(r[sort]))
    return AssociationRules(model_version=view.version, level=level, total=len(kept),
                            rules=[rule.model_validate(r) for r in kept[:limit]])


async def _product_rules(state: ApiState, view: ModelView) -> list[dict[str, Any]]:
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

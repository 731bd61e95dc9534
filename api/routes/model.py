from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Query

from api.deps import CurrentModel, RequestLanguage, State
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
from api.services import model as model_reads
from api.services.customers import NEW_TO_MODEL
from common.i18n import translations
from common.segments import RULES_BY_NAME, suggested_action, words

router = APIRouter(tags=["model"])


# Only the keys the stored card has: one without, say, `eda` is not answered with `"eda": null`.
@router.get("/model", response_model=ModelCard, response_model_exclude_unset=True,
            responses={503: {"description": "no model"}})
async def model(state: State, view: CurrentModel) -> ModelCard:
    """The current version's model card: data window, parameters, offline metrics, EDA and cleaning."""
    return ModelCard.model_validate(await model_reads.card(state, view.version))


@router.get("/segments", response_model=Segments, responses={503: {"description": "no model"}})
async def segments(state: State, view: CurrentModel, language: RequestLanguage) -> Segments:
    """Size, share and mean recency / frequency / monetary per RFM segment; its label, description and action in
    the language the request accepts (Spanish or English)."""
    gettext = translations(language).gettext
    rows = [row | words(row["segment"], gettext) for row in await model_reads.segment_summary(state, view.version)]
    return Segments(model_version=view.version, segments=rows)


# A page's worth of work: the most recent buyers since the model, in one pipelined round trip.
MOVEMENT_MAX_CUSTOMERS = 20_000


# Declared before /segments/{name}, which would otherwise take "movement" for a segment's name.
@router.get("/segments/movement", response_model=SegmentMovement, responses={503: {"description": "no model"}})
async def segment_movement(state: State, view: CurrentModel, language: RequestLanguage) -> SegmentMovement:
    """Where the customers who bought since last night's model stand now: from their segment in the model to the
    segment of their live RFM (scored with the model's quintile edges), counted per pair. The most recent
    20,000 buyers at most."""
    moved = await model_reads.segment_movement(state, view, MOVEMENT_MAX_CUSTOMERS)
    gettext = translations(language).gettext
    new_label = gettext("new to the model")
    return SegmentMovement(
        model_version=view.version, since=view.data_end_ts, customers=moved.customers, limited=moved.limited,
        moves=[SegmentMove(**move, from_label=new_label if move["from_segment"] == NEW_TO_MODEL
                           else words(move["from_segment"], gettext)["label"],
                           to_label=words(move["to_segment"], gettext)["label"]) for move in moved.moves])


@router.get("/segments/{name}", response_model=SegmentOffer,
            responses={404: {"description": "no such segment"}, 503: {"description": "no model"}})
async def segment_offer(
    state: State, view: CurrentModel, language: RequestLanguage,
    name: Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[a-z_]+$")],
) -> SegmentOffer:
    """What to offer one segment: over-represented products and categories (lift with its counts), the segment's
    share of revenue and a suggested action (in the language the request accepts). Product names from the live
    catalogue when it has them."""
    offer = await model_reads.segment_offer(state, view.version, name)
    if offer is None:
        raise HTTPException(404, f"segment {name!r} has no offer in model {view.version}")
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
    rows = [ModelVersion(version=kept.version, published_at=kept.published_at, current=kept.current,
                         data_window=kept.card.get("data_window"), headline=kept.card.get("headline"))
            for kept in await model_reads.kept_versions(state)]
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
        found = await model_reads.category_rules(state, view.version)
        rule = AssociationRule
    else:
        found = await model_reads.product_rules(state, view)
        rule = ProductAssociationRule
    kept = [r for r in found if r["confidence"] >= min_confidence and r["lift"] >= min_lift]
    kept.sort(key=lambda r: -float(r[sort]))
    return AssociationRules(model_version=view.version, level=level, total=len(kept),
                            rules=[rule.model_validate(r) for r in kept[:limit]])


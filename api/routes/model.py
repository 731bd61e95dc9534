from __future__ import annotations

import json
from typing import Annotated, Any, Literal, cast

from fastapi import APIRouter, HTTPException, Path, Query

from api.deps import CurrentModel, State
from api.model_cache import ModelView
from api.schemas import (
    AssociationRule,
    AssociationRules,
    ModelCard,
    ModelVersion,
    ModelVersions,
    ProductAssociationRule,
    SegmentOffer,
    Segments,
)
from api.state import ApiState

router = APIRouter(tags=["model"])


# Only the keys the stored card has: one without, say, `eda` is not answered with `"eda": null`.
@router.get("/model", response_model=ModelCard, response_model_exclude_unset=True,
            responses={503: {"description": "no model"}})
async def model(state: State, view: CurrentModel) -> ModelCard:
    """The current version's model card: data window, parameters, offline metrics, EDA and cleaning."""
    return ModelCard.model_validate(json.loads(await state.redis.get(state.keys.model_card(view.version)) or "{}"))


@router.get("/segments", response_model=Segments, responses={503: {"description": "no model"}})
async def segments(state: State, view: CurrentModel) -> Segments:
    """Size, share and mean recency / frequency / monetary per RFM segment."""
    raw = await state.redis.get(state.keys.model_segment_summary(view.version))
    return Segments(model_version=view.version, segments=json.loads(raw or "[]"))


@router.get("/segments/{name}", response_model=SegmentOffer,
            responses={404: {"description": "no such segment"}, 503: {"description": "no model"}})
async def segment_offer(
    state: State, view: CurrentModel, name: Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[a-z_]+$")],
) -> SegmentOffer:
    """What to offer one segment: over-represented products and categories (lift with its counts), the segment's
    share of revenue and a suggested action. Product names from the live catalogue when it has them."""
    raw = await state.redis.hget(state.keys.model_segment_offers(view.version), name)
    if raw is None:
        raise HTTPException(404, f"segment {name!r} has no offer in model {view.version}")
    offer = json.loads(raw)
    products = state.models.products()
    for row in offer["products"]:
        row.update({k: v for k, v in products.get(row["product_id"], {}).items() if k in ("name", "category")})
    return SegmentOffer.model_validate(offer | {"model_version": view.version})


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

from __future__ import annotations

import json

from fastapi import APIRouter, HTTPException

from api.deps import CurrentModel, ProductIdPath, State
from api.schemas import RelatedProducts, Rule

router = APIRouter(tags=["products"])


@router.get("/products/{product_id}/related", response_model=RelatedProducts,
            responses={404: {"description": "unknown product"}, 503: {"description": "no model"}})
async def related(state: State, view: CurrentModel, product_id: ProductIdPath) -> RelatedProducts:
    """Association rules with this product as the antecedent: support, confidence, lift."""
    product = view.products.get(product_id)
    if product is None:
        raise HTTPException(404, f"product {product_id!r} is not in model {view.version}")
    raw = await state.redis.hget(state.keys.model_rules(view.version), product_id)
    rules = [Rule(name=view.products.get(r["product_id"], {}).get("name"), **r) for r in json.loads(raw or "[]")]
    return RelatedProducts(product_id=product_id, name=product.get("name"), category=product.get("category"),
                           model_version=view.version, rules=rules)

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from api.deps import CurrentModel, ProductIdPath, State
from api.schemas import RelatedProducts, Rule
from api.services import model as model_reads

router = APIRouter(tags=["products"])


@router.get("/products/{product_id}/related", response_model=RelatedProducts,
            responses={404: {"description": "unknown product"}, 503: {"description": "no model"}})
async def related(state: State, view: CurrentModel, product_id: ProductIdPath) -> RelatedProducts:
    """Association rules with this product as the antecedent: support, confidence, lift."""
    product = view.products.get(product_id)
    if product is None:
        raise HTTPException(404, f"product {product_id!r} is not in model {view.version}")
    rules = [Rule(name=view.products.get(r["product_id"], {}).get("name"), **r)
             for r in await model_reads.rules_from(state, view.version, product_id)]
    return RelatedProducts(product_id=product_id, name=product.get("name"), category=product.get("category"),
                           model_version=view.version, rules=rules)

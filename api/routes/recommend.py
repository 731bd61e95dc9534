from __future__ import annotations

from fastapi import APIRouter

from api.deps import CustomerIdQuery, State, TopK
from api.schemas import Recommendation
from api.service import serve

router = APIRouter(tags=["recommend"])


@router.get("/recommend", response_model=Recommendation)
async def recommend(state: State, customer_id: CustomerIdQuery, k: TopK = 5) -> Recommendation:
    """The customer's A/B group decides the strategy: treatment gets the model's list re-ranked with live
    state, control gets best-sellers. Every response is logged as an exposure."""
    return await serve(state, customer_id, k)

"""Response bodies (they are the OpenAPI contract)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel


class RecommendedItem(BaseModel):
    product_id: str
    name: str | None = None
    category: str | None = None
    score: float
    reason: str
    source: str


class Recommendation(BaseModel):
    request_id: str
    customer_id: str
    experiment: str
    group: Literal["control", "treatment"]
    strategy: Literal["model", "best_sellers", "cold_start"]
    model_version: str
    cold_start: bool
    items: list[RecommendedItem]


class Purchase(BaseModel):
    product_id: str
    last_purchased_at: float


class CustomerView(BaseModel):
    customer_id: str
    rfm: dict[str, float]
    recency_days: float | None
    segment: dict[str, Any] | None
    recent: list[Purchase]
    categories: dict[str, int]


class Rule(BaseModel):
    product_id: str
    name: str | None = None
    support: float
    confidence: float
    lift: float


class RelatedProducts(BaseModel):
    product_id: str
    name: str | None
    category: str | None
    model_version: str
    rules: list[Rule]


class GroupResult(BaseModel):
    exposed_customers: int
    converted_customers: int
    exposures: int
    converted_items: int
    revenue: float
    conversion_rate: float


class AbSummary(BaseModel):
    experiment: str
    treatment_percent: int
    attribution_days: float
    groups: dict[str, GroupResult]
    absolute_uplift: float
    relative_uplift: float | None
    ci_low: float | None
    ci_high: float | None
    z: float | None
    p_value: float | None
    exposures_lost: int


class Problem(BaseModel):
    detail: str

"""Response bodies (they are the OpenAPI contract)."""

from __future__ import annotations

import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from common.ab import Group

Strategy = Literal["model", "best_sellers", "cold_start"]


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
    group: Group
    strategy: Strategy
    model_version: str
    cold_start: bool
    items: list[RecommendedItem]


class GroupPreview(BaseModel):
    strategy: Strategy
    items: list[RecommendedItem]


class RecommendationPreview(BaseModel):
    customer_id: str
    model_version: str
    cold_start: bool
    assigned_group: Group
    groups: dict[Group, GroupPreview]


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


class ShownProduct(BaseModel):
    product_id: str
    name: str | None
    shown_at: float
    bought_at: float | None = Field(description="The first purchase within the attribution window, if any.")


class CustomerExposures(BaseModel):
    customer_id: str
    group: Group | None
    shown: list[ShownProduct]


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


class AssociationRule(BaseModel):
    antecedents: list[str]
    consequents: list[str]
    support: float
    confidence: float
    lift: float


class ProductAssociationRule(AssociationRule):
    names: list[str | None] = Field(description="Product names, antecedents then consequents.")


class AssociationRules(BaseModel):
    model_version: str
    level: Literal["product", "category"]
    total: int = Field(description="Rules passing the filters, before the limit.")
    rules: list[ProductAssociationRule] | list[AssociationRule]


class ModelCard(BaseModel):
    """The card as `recsys batch run` wrote it: the keys it writes are described here, any other is kept as is.
    A card is served with the keys it was stored with, none added."""

    model_config = ConfigDict(extra="allow")

    version: str | None = None
    model: str | None = None
    engine: str | None = Field(None, description="Where the models were fitted: single-machine or spark.")
    data_window: dict[str, str] | None = Field(None, description="Start and end of the training history.")
    data: dict[str, int | float] | None = Field(None, description="Lines, orders, customers, ... and revenue.")
    matrix: dict[str, int] | None = None
    params: dict[str, dict[str, Any]] | None = Field(None, description="Tuned settings per component.")
    weights: dict[str, float] | None = Field(None, description="Blend weight per component.")
    headline: dict[str, dict[str, float]] | None = Field(None, description="Variant -> metric -> value.")
    evaluation: dict[str, Any] | None = Field(None, description="Split dates and variant -> model -> metrics.")
    cleaning: dict[str, Any] | None = Field(None, description="Rows removed by reason, rows kept.")
    eda: dict[str, Any] | None = None
    segments: list[dict[str, Any]] | None = None
    built_with: dict[str, str] | None = None


class ModelVersion(BaseModel):
    version: str
    published_at: float
    current: bool
    data_window: dict[str, str] | None
    headline: dict[str, dict[str, float]] | None


class ModelVersions(BaseModel):
    versions: list[ModelVersion] = Field(description="Newest first.")


class SegmentSummary(BaseModel):
    segment: str
    customers: int
    recency_days: float
    frequency: float
    monetary: float
    share: float
    description: str


class Segments(BaseModel):
    model_version: str
    segments: list[SegmentSummary]


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


class DailyConversion(BaseModel):
    date: datetime.date
    exposed: int = Field(description="Customers first exposed up to this day.")
    converted: int = Field(description="Customers first converted up to this day.")
    rate: float
    ci_low: float
    ci_high: float


class AbTimeline(BaseModel):
    experiment: str
    series: dict[Group, list[DailyConversion]]


class LatestPurchase(BaseModel):
    customer_id: str
    product_id: str
    category: str
    units: int
    amount: float
    event_time: str
    order_id: str


class StreamStats(BaseModel):
    stats: dict[str, int | float | str] = Field(description="The worker's counters; numbers parsed, the rest text.")
    latest: list[LatestPurchase] = Field(description="Newest first.")


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Ready(BaseModel):
    ready: Literal[True] = True
    model_version: str


class NotReady(BaseModel):
    ready: Literal[False] = False
    detail: str


class RefitRequested(BaseModel):
    accepted: bool
    requested_at: float = Field(description="Epoch seconds.")


class Problem(BaseModel):
    detail: str

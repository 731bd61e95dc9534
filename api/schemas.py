"""Response bodies (they are the OpenAPI contract)."""

from __future__ import annotations

import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from common.events import EXPERIMENT_PATTERN
from experiments.always_valid import Decision

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
    group: str = Field(description="The customer's arm in the experiment (sticky).")
    strategy: Strategy
    model_version: str
    cold_start: bool
    logged: bool = Field(description="Logged as an exposure of the experiment: only for customers the shop knows "
                                     "(purchases in the stream or the model, or a profile), so a made-up id writes "
                                     "nothing.")
    items: list[RecommendedItem]


class GroupPreview(BaseModel):
    strategy: Strategy
    arm: str = Field(description="What the arm serves: best_sellers, model:current or model:<version>.")
    items: list[RecommendedItem]


class RecommendationPreview(BaseModel):
    customer_id: str
    experiment: str
    model_version: str = Field(description="The version the customer's arm serves.")
    cold_start: bool
    assigned_group: str
    groups: dict[str, GroupPreview] = Field(description="Per arm of the running experiment, in its order.")


class Purchase(BaseModel):
    product_id: str
    name: str | None = None
    category: str | None = None
    last_purchased_at: float


class Profile(BaseModel):
    """What the API shows of a customer's master data: never the birth date, only the age and its band."""

    region: str | None
    city: str | None
    gender: str | None
    age: int | None = Field(description="Whole years on the stream's clock (its latest event time).")
    age_band: str | None


class LiveSegment(BaseModel):
    """The segment of the customer's live RFM, scored with the quintile edges the current model published."""

    segment: str
    label: str = Field(description="The segment's name for people, in the request's language.")
    r: int
    f: int
    m: int
    recency_days: float
    frequency: float
    monetary: float
    cut_points_as_of: str = Field(description="The snapshot the edges were cut at (last night's segmentation).")


class BuyCycle(BaseModel):
    """A product the customer buys again: when they bought it, every how many days, and when it is due."""

    product_id: str
    name: str | None
    purchases: list[float] = Field(description="Purchase times (epoch s, UTC), oldest first: the model's days, "
                                               "then the stream's newer purchase.")
    cycle_days: float = Field(description="Median days between their purchases of it.")
    due_at: float = Field(description="The last purchase plus the cycle (epoch s).")
    overdue: bool = Field(description="Due before the stream's clock (`as_of`).")


class CustomerView(BaseModel):
    customer_id: str
    as_of: float = Field(description="The stream's clock (its latest event time; wall time without events).")
    rfm: dict[str, float]
    recency_days: float | None
    segment: dict[str, Any] | None = Field(description="Last night's segment, from the published model, with its "
                                                       "label, description and action in the request's language.")
    live_segment: LiveSegment | None = None
    profile: Profile | None = None
    recent: list[Purchase]
    categories: dict[str, int]
    buy_cycle: list[BuyCycle] = Field(default_factory=list, description="Up to 5 products they buy again.")


class ShownProduct(BaseModel):
    product_id: str
    name: str | None
    shown_at: float
    bought_at: float | None = Field(description="The first purchase within the attribution window, if any.")


class CustomerExposures(BaseModel):
    customer_id: str
    group: str | None
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
    label: str = Field(description="The segment's name for people, in the request's language (Accept-Language).")
    customers: int
    recency_days: float
    frequency: float
    monetary: float
    share: float
    revenue_share: float | None = None
    description: str
    action: str | None = None


class Segments(BaseModel):
    model_version: str
    segments: list[SegmentSummary]


class SegmentMove(BaseModel):
    from_segment: str = Field(description="Last night's segment ('new_to_model': the model did not know them).")
    from_label: str
    to_segment: str = Field(description="The segment of the live RFM, scored with last night's quintile edges.")
    to_label: str
    customers: int


class SegmentMovement(BaseModel):
    model_version: str
    since: float = Field(description="The model's data end (epoch s): customers who bought after it are counted.")
    customers: int = Field(description="Customers counted (the most recent ones, up to a limit).")
    limited: bool = Field(description="More customers bought since; only the most recent were counted.")
    moves: list[SegmentMove] = Field(description="From -> to with its customers, most customers first.")


class OfferedItem(BaseModel):
    """Lift = (segment_lines / segment_total_lines) / (shop_lines / shop_total_lines): how much more of the
    segment's purchases the item makes up than of the shop's."""

    segment_buyers: int = Field(description="Customers of the segment who bought it.")
    segment_lines: int
    segment_total_lines: int
    shop_lines: int
    shop_total_lines: int
    lift: float


class OfferedProduct(OfferedItem):
    product_id: str
    name: str | None = None
    category: str | None = None


class OfferedCategory(OfferedItem):
    category: str


class SegmentOffer(BaseModel):
    model_version: str
    segment: str
    label: str = Field(description="The segment's name for people, in the request's language (Accept-Language).")
    description: str
    action: str = Field(description="The suggested action, in one line.")
    customers: int
    share: float = Field(description="Share of the shop's customers.")
    revenue: float
    revenue_share: float = Field(description="Share of the shop's revenue.")
    min_segment_buyers: int = Field(description="Buyers in the segment an item needs to be offered.")
    products: list[OfferedProduct] = Field(description="Over-represented products, highest lift first.")
    categories: list[OfferedCategory] = Field(description="Over-represented categories, highest lift first.")


class GroupResult(BaseModel):
    exposed_customers: int
    converted_customers: int
    exposures: int
    converted_items: int
    revenue: float = Field(description="Attributed revenue: purchases of shown products within the window.")
    conversion_rate: float
    revenue_per_exposed: float = Field(description="Attributed revenue / exposed customers.")


class AlwaysValid(BaseModel):
    """Valid however often it is looked at (a mixture SPRT / confidence sequence)."""

    p_value: float
    ci_low: float | None = Field(description="None: not enough data yet (the interval is unbounded).")
    ci_high: float | None
    decision: Decision
    decision_text: str
    min_effect: float = Field(description="Differences smaller than this do not matter (the no-difference stop).")


class FixedHorizon(BaseModel):
    """The textbook z-test: valid only for one look at a sample size fixed in advance."""

    label: str = "fixed-horizon z-test: valid for one look at a sample size fixed in advance, not for a dashboard"
    p_value: float | None
    ci_low: float | None
    ci_high: float | None


class MetricComparison(BaseModel):
    control: float
    treatment: float = Field(description="The compared arm's mean.")
    difference: float = Field(description="treatment - control")
    relative: float | None = Field(description="difference / control; None when control is 0")
    always_valid: AlwaysValid
    fixed_horizon: FixedHorizon


class SampleRatioCheck(BaseModel):
    """Chi-square of exposed customers per arm against the configured split."""

    expected_shares: dict[str, float]
    observed_shares: dict[str, float] | None = Field(description="None before any customer is exposed.")
    chi_square: float | None
    p_value: float | None
    threshold: float
    mismatch: bool


ExperimentState = Literal["running", "ended"]


class ArmInfo(BaseModel):
    name: str
    serves: str = Field(description="best_sellers, model:current or model:<version>.")
    percent: int = Field(description="Its share of customers, in percent.")


class CupedComparison(BaseModel):
    """The same comparisons, each customer's outcome adjusted by their own spend in the pre-period before their
    first exposure (CUPED): the same effect, a narrower interval when the pre-period predicts the outcome."""

    conversion: MetricComparison
    revenue_per_exposed: MetricComparison
    conversion_variance_reduction: float = Field(description="1 - Var(adjusted difference) / Var(raw difference).")
    revenue_variance_reduction: float
    pre_period_days: float


class ArmComparison(BaseModel):
    """One arm against the control."""

    conversion: MetricComparison
    revenue_per_exposed: MetricComparison
    cuped: CupedComparison


class Promoted(BaseModel):
    arm: str
    version: str
    at: datetime.datetime


class BanditShares(BaseModel):
    interval: int
    at: datetime.datetime
    shares: dict[str, int] = Field(description="Percent of new customers per arm from then on.")
    customers_before: int = Field(description="Customers exposed before this split took effect.")


BANDIT_NOTE = ("An adaptive split biases the plain per-arm means and their differences (an arm that did well early "
               "gets more of the later customers), and the always-valid intervals assume a fixed split; the "
               "inverse-probability-weighted means weigh each customer by the share their arm had when they were "
               "assigned, and are unbiased for what each arm would give if shown to everyone.")


class BanditReport(BaseModel):
    interval_minutes: float
    min_share: float
    history: list[BanditShares] = Field(description="The split at the start and after each re-weighting.")
    ipw_conversion: dict[str, float] = Field(description="Per arm: the inverse-probability-weighted conversion.")
    ipw_revenue_per_exposed: dict[str, float]
    note: str = BANDIT_NOTE


class AbSummary(BaseModel):
    experiment: str
    replayed: bool = Field(description="Exposures of replayed history (event time), not live requests.")
    causal: bool = Field(description="False for a replay: the orders are historical, so they do not depend on "
                                     "what was shown, and the uplift is not the effect of showing it.")
    managed: bool = Field(description="Started with `recsys ab start` (else the settings' experiment).")
    started_at: datetime.datetime | None = Field(description="The earliest exposure's event time.")
    arms: list[ArmInfo] = Field(description="The first is the control.")
    attribution_days: float
    alpha: float = Field(description="The error rate of the whole experiment (family-wise).")
    comparison_alpha: float = Field(description="The error rate of each arm's comparison with the control: alpha "
                                                "divided by the number of comparisons (Bonferroni).")
    correction: str
    groups: dict[str, GroupResult] = Field(description="Per arm.")
    comparisons: dict[str, ArmComparison] = Field(description="Per arm other than the control.")
    sample_ratio: SampleRatioCheck
    exposures_lost: int
    promoted: Promoted | None = None
    bandit: BanditReport | None = None
    state: ExperimentState = "running"
    ended_at: datetime.datetime | None = Field(default=None, description="When it was stopped (wall clock); its "
                                               "summary is the final one, kept after its other keys were freed.")


class ExperimentInfo(BaseModel):
    name: str
    started_at: datetime.datetime = Field(description="The earliest exposure's time, on the experiment's own clock.")
    replayed: bool
    live: bool = Field(description="The experiment real /recommend requests are logged in now.")
    managed: bool = False
    arms: list[ArmInfo] = Field(default_factory=list, description="Empty for a replay's experiment.")
    promoted: Promoted | None = None
    exposed_customers: int
    state: ExperimentState = "running"
    ended_at: datetime.datetime | None = None


class ExperimentStopped(BaseModel):
    experiment: str
    already_ended: bool = Field(description="It had been stopped before: nothing changed.")
    ended_at: datetime.datetime
    freed_keys: int = Field(description="Keys of the experiment deleted (per-customer exposures, guard, counters).")
    summary: AbSummary


class Experiments(BaseModel):
    live: str
    experiments: list[ExperimentInfo] = Field(
        description="The live one first, then the replays by start, newest first (starts of a replay are the "
                    "history's event time, so they are not compared with the live one's wall time).")


class DailyConversion(BaseModel):
    date: datetime.date
    exposed: int = Field(description="Customers first exposed up to this day.")
    converted: int = Field(description="Customers first converted up to this day.")
    rate: float
    ci_low: float
    ci_high: float


class DailyUplift(BaseModel):
    date: datetime.date
    difference: float = Field(description="The arm's conversion - control's, customers exposed up to this day.")
    ci_low: float | None = Field(description="The always-valid interval as it stood that day.")
    ci_high: float | None


class AbTimeline(BaseModel):
    experiment: str
    replayed: bool = Field(description="Days are the replayed history's event time; otherwise wall-clock days.")
    series: dict[str, list[DailyConversion]] = Field(description="Per arm.")
    uplift: dict[str, list[DailyUplift]] = Field(description="Per arm other than the control, with its always-valid "
                                                            "interval at the summary's comparison_alpha.")


class StartExperiment(BaseModel):
    """What `POST /ab/experiments` starts (`recsys ab start`)."""

    name: str = Field(pattern=EXPERIMENT_PATTERN)
    arms: list[str] = Field(min_length=2, description="NAME=best_sellers or NAME=model:VERSION ('current' follows "
                                                      "the pointer); the first is the control.",
                            examples=[["control=best_sellers", "current=model:current",
                                       "challenger=model:20261205T020000Z"]])
    split: list[int] | None = Field(default=None, description="Percent per arm, adding up to 100 (default: even); "
                                                            "a bandit's first split.")
    bandit: bool = Field(default=False, description="Re-weight the split by Thompson sampling on conversion.")
    bandit_interval_minutes: float = Field(default=60.0, ge=1 / 60, description="How often (experiment clock).")
    min_share: float = Field(default=0.1, ge=0, le=0.5, description="Each arm's floor under the bandit.")


class PromoteArm(BaseModel):
    arm: str


class ArmPromoted(BaseModel):
    experiment: str
    arm: str
    version: str
    previous: str | None = Field(description="The version that was current before.")


class LatestPurchase(BaseModel):
    customer_id: str
    product_id: str
    name: str | None = None
    category: str
    units: int
    amount: float
    event_time: str
    order_id: str
    segment: str | None = Field(default=None, description="The customer's segment in the published model (last "
                                                          "night's), when the model knows them.")


class RedisMemory(BaseModel):
    used_bytes: int
    max_bytes: int | None = Field(description="Redis's maxmemory; None when unlimited.")
    share: float | None = Field(description="used / max; None when unlimited.")
    warning: bool = Field(description="At or above 80% of maxmemory: with noeviction, writes stop when it is full.")
    policy: str = Field(description="Redis's maxmemory-policy (noeviction on the local stack and in compose).")


class StreamStats(BaseModel):
    stats: dict[str, int | float | str] = Field(description="The worker's counters; numbers parsed, the rest text.")
    latest: list[LatestPurchase] = Field(description="Newest first.")
    memory: RedisMemory


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class ExposureSender(BaseModel):
    """The background sender of exposures to Kafka: whether it holds a broker connection now, what waits, what
    was lost (queue full), and the broker failures it recovered from."""

    running: bool
    connected: bool
    queued: int
    sent: int
    lost: int
    errors: int
    last_error: str | None


class Ready(BaseModel):
    ready: Literal[True] = True
    model_version: str
    exposures: ExposureSender


class NotReady(BaseModel):
    ready: Literal[False] = False
    detail: str
    exposures: ExposureSender | None = None


class RefitRequested(BaseModel):
    accepted: bool
    requested_at: float = Field(description="Epoch seconds.")


class Problem(BaseModel):
    detail: str


class PurchasesAccepted(BaseModel):
    accepted: int = Field(description="Lines acknowledged by the broker (acks=all).")
    topic: str
    event_ids: list[str] = Field(description="One per line, in request order; the same on a retry.")

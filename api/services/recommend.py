"""Serving one recommendation list: the code path shared by `/recommend` and the replay's simulated visits."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from typing import Any, NamedTuple

from api.adapters.exposures import Exposure
from api.model_cache import ModelView
from api.ranking import Ranked, best_sellers, rule_boosts, treatment
from api.schemas import GroupPreview, RecommendationPreview, RecommendedItem, Strategy
from api.services.cohorts import cohort_cold_start
from api.state import ApiState
from common import toplist
from common.i18n import DEFAULT_LANGUAGE, N_, Gettext, Language, translations
from common.toplist import LazyTopList
from experiments.plan import Arm, Plan

HOUR_S = 3600.0
NO_PRODUCT: dict[str, Any] = {}


class Context(NamedTuple):
    """What `/recommend` reads from Redis for one customer."""

    view: ModelView  # the version the customer's arm serves (the current one, unless the arm pins another)
    model_list: LazyTopList | None  # the customer's list in that version; None for a customer it has not seen
    recent: list[tuple[str, float]]  # live recent purchases (product, event time), newest first
    plan: Plan  # the experiment the customer is served in
    arm: Arm  # the customer's arm in it
    propensity: float | None  # under a bandit, for a customer it assigns now: the arm's share; else None


class NoModelError(Exception):
    """Nothing is published yet; `recsys batch run` publishes the first model. The app answers it with 503."""

    def __init__(self) -> None:
        # marked for the catalogue: the live view shows this detail in the session's language
        super().__init__(N_("no model is published yet: run `recsys batch run`"))


async def serve(state: ApiState, customer_id: str, k: int, at: datetime | None = None,
                experiment: str | None = None, language: Language = DEFAULT_LANGUAGE) -> dict[str, Any]:
    """The response body (shaped as `Recommendation`), logged as an exposure of the customer's arm in the running
    experiment (the replay's visits name their own, so event time and wall time never share one). One pipelined
    Redis round trip: the model pointer, the running experiment's plan, the customer's list in the version their
    arm serves and their live recent purchases together; a second only when the plan or the version moved, or
    for rules not yet cached.

    Built as plain data on purpose: this is the hot path, and the inputs are our own (validated when they were
    written), so pydantic validation per item would only cost time."""
    view, model_list, recent, plan, arm, propensity = await read_context(state, customer_id, experiment)
    items, strategy = await _for_arm(state, arm, view, model_list, recent, k, customer_id, language)
    request_id = os.urandom(16).hex()  # 32 hex digits like uuid4().hex, at a quarter of its cost
    logged = model_list is not None or bool(recent) or await _has_profile(state, customer_id)
    if logged:
        state.exposures.publish(Exposure(request_id, customer_id, plan.name, arm.name, strategy, view.version,
                                         [item["product_id"] for item in items], at or datetime.now(UTC),
                                         propensity))
    if plan.bandit is not None:
        state.bandits.observe(plan)  # re-weights in the background when its interval has passed
    return {
        "request_id": request_id, "customer_id": customer_id, "experiment": plan.name, "group": arm.name,
        "strategy": strategy, "model_version": view.version, "cold_start": model_list is None, "logged": logged,
        "items": items,
    }


async def _has_profile(state: ApiState, customer_id: str) -> bool:
    """A customer the shop knows only by their profile. An id with no purchases, no model list and no profile is
    served best-sellers and not logged: every arm would see the same list, and a made-up id must write no
    state (exposures, guard entries, experiment members)."""
    exists, = await state.redis_mux.execute(("EXISTS", state.keys.customer_profile(customer_id)))
    return bool(exists)


async def preview(state: ApiState, customer_id: str, k: int,
                  language: Language = DEFAULT_LANGUAGE) -> RecommendationPreview:
    """What each arm of the running experiment would show the customer, side by side; not an exposure."""
    context = await read_context(state, customer_id)
    current = state.models.view
    assert current is not None  # read_context raised NoModelError otherwise
    groups = {}
    for arm in context.plan.arms:
        view, model_list = await _arm_list(state, arm, current, customer_id, context)
        items, strategy = await _for_arm(state, arm, view, model_list, context.recent, k, customer_id, language)
        groups[arm.name] = GroupPreview(strategy=strategy, arm=arm.label,
                                        items=[RecommendedItem.model_validate(i) for i in items])
    return RecommendationPreview(
        customer_id=customer_id, experiment=context.plan.name, model_version=context.view.version,
        cold_start=context.model_list is None, assigned_group=context.arm.name, groups=groups)


async def _arm_list(state: ApiState, arm: Arm, current: ModelView, customer_id: str,
                    context: Context) -> tuple[ModelView, LazyTopList | None]:
    version = arm.pinned_version or current.version
    if version == context.view.version:
        return context.view, context.model_list
    raw, = await state.redis_mux.execute(("HGET", state.keys.model_topn(version, customer_id), customer_id))
    return await state.models.at_version(version), toplist.decode_lazily(raw) if raw else None


def _plan_of(state: ApiState, experiment: str | None) -> Plan:
    """The running experiment's plan as last read, or the default arms under a replay's experiment name."""
    if experiment is None:
        return state.plans.plan
    return state.plans.default.model_copy(update={"name": experiment})


async def read_context(state: ApiState, customer_id: str, experiment: str | None = None) -> Context:
    """Every Redis read `/recommend` makes for a customer, in one pipelined round trip on the shared connection:
    the `current` model pointer, the running experiment's plan, the customer's live recent purchases and their
    list in the version their arm serves as last known (a second round trip only in the rare case the plan or
    the version moved). `experiment` (a replay's) serves the default arms and reads no plan. The benchmark's
    same-reads floor calls this very function."""
    keys = state.keys
    live = experiment is None
    guessed = _plan_of(state, experiment)
    versions = _versions_to_read(guessed, customer_id, state.models.view)
    commands: list[tuple[str, ...]] = [("GET", keys.model_current()),
                                       ("ZREVRANGE", keys.customer_recent(customer_id), "0", "-1", "WITHSCORES")]
    if live:
        commands.append(("GET", keys.ab_live_plan()))
    if guessed.bandit is not None:  # the arm a bandit already gave the customer, as the stream recorded it
        commands.append(("HGET", keys.ab_customer_state(guessed.name, customer_id), "group"))
    commands += [("HGET", keys.model_topn(version, customer_id), customer_id) for version in versions]
    current_raw, recent_raw, *rest = await state.redis_mux.execute(*commands)
    plan = state.plans.observe(rest.pop(0)) if live else guessed
    recorded = rest.pop(0) if guessed.bandit is not None else None
    if guessed.name != plan.name:  # the plan changed since: what was read belongs to another experiment
        recorded = None
    current = await state.models.observe(current_raw.decode() if current_raw is not None else None)
    if current is None:
        raise NoModelError
    arm = _arm(plan, customer_id, recorded)
    assigned_now = plan.bandit is not None and (recorded is None or recorded.decode() not in plan.arm_names)
    version = arm.pinned_version or current.version
    view = current if version == current.version else await state.models.at_version(version)
    lists = dict(zip(versions, rest, strict=True))
    if version in lists:
        topn_raw = lists[version]
    else:
        topn_raw, = await state.redis_mux.execute(("HGET", keys.model_topn(version, customer_id), customer_id))
    # WITHSCORES: member, score, member, score, ...
    recent = list(zip(map(bytes.decode, recent_raw[0::2]), map(float, recent_raw[1::2]), strict=True))
    return Context(view, toplist.decode_lazily(topn_raw) if topn_raw else None, recent, plan, arm,
                   plan.share(arm) if assigned_now else None)


def _versions_to_read(plan: Plan, customer_id: str, current: ModelView | None) -> list[str]:
    """The versions whose list of the customer the first round trip reads: the one of the arm the plan gives
    them, or under a bandit (which may have given them another arm before) every version its arms serve."""
    arms = plan.arms if plan.bandit is not None else [plan.arm_of(customer_id)]
    versions = {arm.pinned_version or (current.version if current is not None else None) for arm in arms}
    return sorted(v for v in versions if v is not None)


def _arm(plan: Plan, customer_id: str, recorded: bytes | None) -> Arm:
    """Under a bandit, the arm the customer was given before, if the stream has recorded one; else the plan's."""
    if recorded is not None and recorded.decode() in plan.arm_names:
        return plan.arm(recorded.decode())
    return plan.arm_of(customer_id)


async def _for_arm(state: ApiState, arm: Arm, view: ModelView, model_list: LazyTopList | None,
                   recent: list[tuple[str, float]], k: int, customer_id: str, language: Language
                   ) -> tuple[list[dict[str, Any]], Strategy]:
    """The answer's items (their reasons in `language`) and the strategy that chose them. A model arm's customer
    the version has not seen gets the cold start (cohort best-sellers where published)."""
    gettext = translations(language).gettext
    if arm.strategy == "model" and model_list is not None:
        return [_item(r, view) for r in await _treatment(state, view, model_list, recent, k, gettext)], "model"
    strategy: Strategy = "best_sellers" if model_list is not None or arm.strategy == "best_sellers" else "cold_start"
    if strategy == "cold_start" and (
            cohort := await cohort_cold_start(state, view, customer_id, k, gettext)) is not None:
        return [_item(r, view) for r in cohort], strategy
    return _best_seller_items(view, k, language), strategy


def _best_seller_items(view: ModelView, k: int, language: Language) -> list[dict[str, Any]]:
    """Ranked once per k, language and version (shared between answers, never changed)."""
    key = ("best_sellers", k, language)
    items: list[dict[str, Any]] | None = view.memo.get(key)
    if items is None:
        ranked = best_sellers(view.popular, k, view.trend_days, gettext=translations(language).gettext)
        items = view.memo[key] = [_item(r, view) for r in ranked]
    return items


async def _treatment(state: ApiState, view: ModelView, model_list: LazyTopList,
                     recent: list[tuple[str, float]], k: int, gettext: Gettext) -> list[Ranked]:
    basket_s = state.settings.recommend_basket_hours * HOUR_S
    latest = max((ts for _, ts in recent), default=0.0)
    basket = [p for p, ts in recent if ts >= latest - basket_s]
    missing = [p for p in basket if p not in view.rules]
    if missing:
        raw = (await state.redis_mux.execute(("HMGET", state.keys.model_rules(view.version), *missing)))[0]
        view.rules.update({p: rule_boosts(json.loads(r)) if r else [] for p, r in zip(missing, raw, strict=True)})
    rules = {p: view.rules[p] for p in basket}
    ranked = treatment(model_list, recent, rules, view.data_end_ts, basket_s, k, view.trend_days, view.products,
                       gettext)
    if len(ranked) < k:  # the model list ran out (the customer bought much of it since): top up
        listed = frozenset(r.product_id for r in ranked) | {p for p, _ in recent}
        ranked += best_sellers(view.popular, k - len(ranked), view.trend_days, exclude=listed, gettext=gettext)
    return ranked


def _item(ranked: Ranked, view: ModelView) -> dict[str, Any]:
    product = view.products.get(ranked.product_id, NO_PRODUCT)
    return {"product_id": ranked.product_id, "name": product.get("name"), "category": product.get("category"),
            "score": ranked.score, "reason": ranked.reason, "source": ranked.source}

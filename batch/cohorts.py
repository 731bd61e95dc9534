"""Demographic cold start: best-sellers per cohort (region and age band, falling back to region, then age band)
for customers the model has never seen, and the offline check that decides whether a version serves them.

The check: for every customer with a profile whose first purchase in the test period is known, rank the cohort's
best-sellers (as served: the narrowest published cohort, topped up with the shop's) and the shop's best-sellers,
both counted on the training period, and score each against the products of that first order. Cohort lists are
published only when they beat the global list for customers new in the test period (the cold-start population)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from batch.evaluation.metrics import mean_metrics, ndcg_at
from common.data.membership import is_in
from common.profiles import age_band, cohort_best_sellers, cohort_chain, cohort_key

MIN_COHORT_CUSTOMERS = 30  # buyers behind a cohort's list; smaller cohorts fall back to a broader one
LIST_LENGTH = 50
KS = (5, 10, 20)
DECISION_METRIC = "ndcg@10"
MIN_NEW_CUSTOMERS = 20  # fewer new customers than this in the test period: decide on everyone's first purchase
LEVELS: tuple[tuple[bool, bool], ...] = ((True, True), (True, False), (False, True))  # (by region, by age band)


def profile_cohorts(customers: pd.DataFrame) -> pd.DataFrame:
    """customer_id, region, age_band and the customer's cohort chain, narrowest first."""
    ages = customers["age"].astype("Int64")
    bands = [age_band(None if pd.isna(a) else int(a)) for a in ages]
    regions = [None if pd.isna(r) else str(r) for r in customers["region"]]
    return pd.DataFrame({"customer_id": customers["customer_id"].astype(str).to_numpy(), "region": regions,
                         "age_band": bands,
                         "chain": [cohort_chain(r, b) for r, b in zip(regions, bands, strict=True)]})


def in_window(lines: pd.DataFrame, window_days: float | None) -> pd.DataFrame:
    """The lines of the last `window_days` days (all of them for None), as the best-seller models count them."""
    if window_days is None or lines.empty:
        return lines
    recent: pd.DataFrame = lines[lines["event_time"] > lines["event_time"].max() - pd.Timedelta(days=window_days)]
    return recent


def global_best_sellers(lines: pd.DataFrame, window_days: float | None, n: int = LIST_LENGTH) -> list[dict[str, Any]]:
    """Distinct buyers per product in the window, most first (ties by product id, as the popularity model)."""
    buyers = in_window(lines, window_days).groupby("product_id")["customer_id"].nunique()
    ranked = buyers.reset_index().sort_values(["customer_id", "product_id"], ascending=[False, True]).head(n)
    return [{"product_id": str(p), "buyers": int(b)} for p, b in zip(ranked["product_id"], ranked["customer_id"],
                                                                    strict=True)]


def cohort_lists(lines: pd.DataFrame, customers: pd.DataFrame, window_days: float | None,
                 min_customers: int = MIN_COHORT_CUSTOMERS, n: int = LIST_LENGTH) -> dict[str, list[dict[str, Any]]]:
    """cohort key -> its best-sellers in the window, for every cohort with at least `min_customers` buyers there.

    Customers and products are integer codes here: a shop's history has millions of (customer, product) pairs,
    and a cohort is a property of the customer, looked up once per customer."""
    profiles = profile_cohorts(customers).drop_duplicates("customer_id", keep="last")
    window = in_window(lines, window_days)
    product_codes, products = pd.factorize(window["product_id"], sort=True)
    customer_codes = pd.Categorical(window["customer_id"].astype(str), categories=profiles["customer_id"]).codes
    profiled = (customer_codes >= 0) & (product_codes >= 0)
    pairs = np.unique(customer_codes[profiled].astype(np.int64) * len(products) + product_codes[profiled])
    pair_customer, pair_product = pairs // max(len(products), 1), pairs % max(len(products), 1)
    buying = np.unique(pair_customer)
    lists: dict[str, list[dict[str, Any]]] = {}
    for by_region, by_band in LEVELS:
        keys = [cohort_key(r if by_region else None, b if by_band else None) if (r or not by_region)
                and (b or not by_band) else "" for r, b in zip(profiles["region"], profiles["age_band"], strict=True)]
        cohort_of, names = pd.factorize(np.asarray(keys, dtype=object))
        sizes = np.bincount(cohort_of[buying], minlength=len(names))
        large = (sizes >= min_customers) & (names != "")
        cohort = cohort_of[pair_customer]
        kept = large[cohort]
        counted = pd.DataFrame({"cohort": cohort[kept], "product": pair_product[kept]}).value_counts().rename(
            "buyers").reset_index()
        # Most buyers first, ties by product id (codes follow the ids' order), as the popularity model ranks.
        counted = counted.sort_values(["cohort", "buyers", "product"], ascending=[True, False, True])
        top = counted.groupby("cohort", sort=False).head(n)
        codes, product, buyers = (top[c].to_numpy() for c in ("cohort", "product", "buyers"))
        for code in pd.unique(codes):
            at = codes == code
            lists[str(names[code])] = [{"product_id": str(p), "buyers": int(b)}
                                       for p, b in zip(products[product[at]], buyers[at], strict=True)]
    return lists


def evaluate_cold_start(lines: pd.DataFrame, customers: pd.DataFrame, split: pd.Timestamp,
                        window_days: float | None, max_customers: int | None = None,
                        seed: int = 0) -> dict[str, Any]:
    """Cohort vs global best-sellers on each profiled customer's first order in the test period, for the customers
    new in it and for everyone, counted all time and over the served best-seller window; and the decision.
    At most `max_customers` are scored, a seeded sample (as the evaluation samples, RECSYS_BATCH_EVAL_MAX_CUSTOMERS)."""
    needed = lines[["customer_id", "order_id", "product_id", "event_time"]]
    before = (needed["event_time"] < split).to_numpy()
    train, test = needed[before], needed[~before]
    profiles = profile_cohorts(customers).set_index("customer_id")
    first_orders = test.sort_values("event_time", kind="stable").drop_duplicates("customer_id")
    firsts = test.merge(first_orders[["customer_id", "order_id"]], on=["customer_id", "order_id"])
    relevant = firsts.groupby("customer_id")["product_id"].agg(set)
    relevant = relevant[relevant.index.isin(profiles.index[profiles["chain"].map(len) > 0])]
    new = ~is_in(relevant.index, train["customer_id"])
    everyone = {"new_customers": relevant[new], "all_customers": relevant}
    # Each population is sampled on its own: a sample of everyone would hold too few new customers to decide on.
    populations = {name: _sampled(sets, max_customers, seed) for name, sets in everyone.items()}
    windows = {"all time": None, f"last {window_days:g} days": window_days} if window_days else {"all time": None}
    catalogue = int(train["product_id"].nunique())
    result: dict[str, Any] = {"split": str(split.date()), "min_cohort_customers": MIN_COHORT_CUSTOMERS}
    paired: dict[tuple[str, str], tuple[list[float], list[float]]] = {}
    for label, window in windows.items():
        top = global_best_sellers(train, window, max(KS))
        overall = [o["product_id"] for o in top]
        cohorts = cohort_lists(train, customers, window)
        for name, sets in populations.items():
            served = [cohort_best_sellers(chain, cohorts, top, max(KS))
                      for chain in profiles.loc[sets.index, "chain"]] if len(sets) else []
            ranked = [[p for p, _, _ in r] for r in served]
            block = result.setdefault(name, {"customers": len(sets), "eligible": len(everyone[name])})
            block[f"global, {label}"] = _rounded(mean_metrics([overall] * len(sets), list(sets), KS, catalogue))
            block[f"cohort, {label}"] = _rounded(mean_metrics(ranked, list(sets), KS, catalogue))
            block[f"served from a cohort, {label}"] = round(
                sum(1 for r in served if r and r[0][2] is not None) / len(served), 4) if served else 0.0
            paired[name, label] = ([ndcg_at(r, rel, 10) for r, rel in zip(ranked, sets, strict=True)],
                                   [ndcg_at(overall, rel, 10) for rel in sets])
    result["decision"] = decide(result, list(windows)[-1], paired)
    return result


def _sampled(sets: pd.Series, max_customers: int | None, seed: int) -> pd.Series:
    """At most `max_customers` of them, a seeded sample in their original order."""
    if max_customers is None or len(sets) <= max_customers:
        return sets
    return sets.iloc[np.sort(np.random.default_rng(seed).choice(len(sets), size=max_customers, replace=False))]


def decide(result: dict[str, Any], window: str,
           paired: dict[tuple[str, str], tuple[list[float], list[float]]]) -> dict[str, Any]:
    """Cohorts are served when, over the served best-sellers' window, they beat the global list on NDCG@10 for the
    customers new in the test period (everyone's first purchase when too few are new), with the 95% interval of
    the paired per-customer difference above zero: a win within the noise is not a win."""
    population = ("new_customers" if result["new_customers"]["customers"] >= MIN_NEW_CUSTOMERS
                  else "all_customers")
    cohort, overall = paired[population, window]
    difference = np.array(cohort) - np.array(overall)
    mean = float(difference.mean()) if len(difference) else 0.0
    half = 1.96 * float(difference.std(ddof=1)) / np.sqrt(len(difference)) if len(difference) > 1 else float("inf")
    return {"population": population, "window": window, "metric": DECISION_METRIC, "customers": len(difference),
            "cohort": round(float(np.mean(cohort)), 4) if cohort else 0.0,
            "global": round(float(np.mean(overall)), 4) if overall else 0.0,
            "difference": round(mean, 4), "ci_low": round(float(mean - half), 4),
            "ci_high": round(float(mean + half), 4),
            "serve_cohorts": bool(mean - half > 0)}


def _rounded(metrics: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 4) for k, v in metrics.items() if not k.startswith("map@")}

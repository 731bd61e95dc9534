"""Temporal-split offline evaluation: train before a date, score the purchases after it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from batch.evaluation.metrics import batch_metrics, hit_matrix
from batch.interactions import Interactions, positions
from batch.models.base import Recommender
from common.data.errors import DataError
from common.data.membership import is_in

Variant = Literal["all_items", "new_items"]
VARIANTS: tuple[Variant, ...] = ("all_items", "new_items")
KS = (5, 10, 20)


@dataclass
class Holdout:
    """The relevant sets of one variant: customers evaluated (train rows) and what they bought after the split."""

    rows: np.ndarray
    relevant: sp.csr_matrix  # evaluated customers x train catalogue
    n_relevant: np.ndarray  # relevant products per customer, including ones the catalogue lacks
    exclude_seen: bool
    eligible: int = 0  # customers who bought on both sides; `rows` is a seeded sample of them when fewer

    def sample(self, max_customers: int, seed: int = 0) -> Holdout:
        """At most `max_customers` of the evaluated customers (a seeded sample, in their order); itself when fewer."""
        if len(self.rows) <= max_customers:
            return self
        keep = np.sort(np.random.default_rng(seed).choice(len(self.rows), max_customers, replace=False))
        return Holdout(self.rows[keep], sp.csr_matrix(self.relevant[keep]), self.n_relevant[keep], self.exclude_seen,
                       self.eligible)


@dataclass
class TemporalSplit:
    train: Interactions
    split: pd.Timestamp
    end: pd.Timestamp
    holdouts: dict[Variant, Holdout]

    @classmethod
    def at(cls, lines: pd.DataFrame, split: pd.Timestamp, end: pd.Timestamp | None = None,
           max_customers: int | None = None, seed: int = 0) -> TemporalSplit:
        """Train on lines before `split`, test on [split, end). Evaluated customers bought on both sides; at most
        `max_customers` of them, a seeded sample (the metrics' error shrinks with the square root of it, the
        scoring time grows linearly)."""
        before = lines[lines["event_time"] < split]
        after = lines[lines["event_time"] >= split]
        if end is not None:
            after = after[after["event_time"] < end]
        if before.empty or after.empty:
            raise DataError(f"split {split.date()} leaves an empty side: {len(before)} lines before, "
                             f"{len(after)} after")
        train = Interactions.from_lines(before)
        bought = after[["customer_id", "product_id"]].drop_duplicates()
        bought = bought[is_in(bought["customer_id"], train.customer_ids)]
        eligible = np.sort(bought["customer_id"].unique().astype(str))
        if max_customers is not None and len(eligible) > max_customers:
            sample = np.random.default_rng(seed).choice(eligible, size=max_customers, replace=False)
            bought = bought[bought["customer_id"].isin(sample)]
        seen_pairs = before[["customer_id", "product_id"]].drop_duplicates()
        new = bought.merge(seen_pairs, how="left", indicator=True)
        new = new[new["_merge"] == "left_only"][["customer_id", "product_id"]]
        return cls(
            train=train, split=split, end=after["event_time"].max(),
            holdouts={"all_items": _holdout(train, bought, exclude_seen=False, eligible=len(eligible)),
                      "new_items": _holdout(train, new, exclude_seen=True, eligible=len(eligible))},
        )


def _holdout(train: Interactions, bought: pd.DataFrame, exclude_seen: bool, eligible: int) -> Holdout:
    customers = np.sort(bought["customer_id"].unique().astype(str))
    rows = train.rows_of(customers)
    local = np.searchsorted(customers, bought["customer_id"].to_numpy(dtype=str))
    cols = positions(train.product_ids, bought["product_id"].to_numpy(dtype=str))
    in_catalogue = cols >= 0
    relevant = sp.csr_matrix(
        (np.ones(int(in_catalogue.sum()), dtype=np.float32), (local[in_catalogue], cols[in_catalogue])),
        shape=(len(customers), len(train.product_ids)),
    )
    n_relevant = np.bincount(local, minlength=len(customers))
    return Holdout(rows=rows, relevant=relevant, n_relevant=n_relevant, exclude_seen=exclude_seen,
                   eligible=eligible)


def evaluate(model: Recommender, holdout: Holdout, ks: Sequence[int] = KS) -> tuple[dict[str, float], np.ndarray]:
    """Metrics at each k (plus catalogue coverage) and the top-max(k) product indices per evaluated customer."""
    top, _ = model.recommend(holdout.rows, max(ks), exclude_seen=holdout.exclude_seen)
    hits = hit_matrix(top, holdout.relevant)
    results: dict[str, float] = {"customers": float(len(holdout.rows)), "eligible_customers": float(holdout.eligible)}
    for k in ks:
        results |= batch_metrics(hits, holdout.n_relevant, k)
        results[f"coverage@{k}"] = len(np.unique(top[:, :k])) / len(model.product_ids)
    return results, top


def coverage_of(model: Recommender, data: Interactions) -> dict[str, float]:
    """How much of the shop a model can score above zero: its products, and the share of purchase lines and of
    customers they account for (a customer is covered when they bought at least one covered product)."""
    covered = model.covered_products()
    n_products = len(model.product_ids)
    if len(covered) == n_products:
        return {"products": n_products, "of_products": n_products, "lines_share": 1.0, "customers_share": 1.0}
    lines = is_in(data.lines["product_id"], model.product_ids[covered])
    customers = data.binary[:, covered].getnnz(axis=1) > 0
    return {"products": len(covered), "of_products": n_products,
            "lines_share": float(lines.mean()) if len(lines) else 0.0,
            "customers_share": float(customers.mean()) if len(customers) else 0.0}

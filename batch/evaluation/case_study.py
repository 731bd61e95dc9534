"""The case study's own offline protocol, reproduced as coded so its headline figure can be compared.

It is in-sample: NMF is fitted on the whole matrix and scored against the same purchases, with nothing held out,
so its Precision@K measures reconstruction, not prediction. It is reported in its own, labelled table."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from sklearn.decomposition import NMF
from sklearn.exceptions import ConvergenceWarning

from batch.evaluation.split import KS

TOP_PRODUCTS = 1000
MIN_ROWS_PER_CUSTOMER = 5  # "more than 5 remaining rows"
PUBLISHED = {"precision@5": 0.1134, "precision@10": 0.0748, "precision@20": 0.0562}


def protocol_matrix(lines: pd.DataFrame, max_customers: int | None = None, seed: int = 0) -> pd.DataFrame:
    """Top 1,000 products by rows, customers with more than 5 of those rows, pivot of the mean amount. The matrix
    is dense, so beyond `max_customers` (the memory plan's) a seeded sample of those customers is taken."""
    top = lines["product_id"].value_counts().index[:TOP_PRODUCTS]
    kept = lines[lines["product_id"].isin(top)]
    rows = kept.groupby("customer_id")["product_id"].transform("size")
    kept = kept[rows > MIN_ROWS_PER_CUSTOMER]
    customers = kept["customer_id"].unique()
    if max_customers is not None and len(customers) > max_customers:
        sample = np.random.default_rng(seed).choice(np.sort(np.asarray(customers, dtype=str)), max_customers,
                                                    replace=False)
        kept = kept[kept["customer_id"].isin(sample)]
    return kept.pivot_table(index="customer_id", columns="product_id", values="amount", aggfunc="mean", fill_value=0)


def in_sample_precision(lines: pd.DataFrame, max_customers: int | None = None) -> dict[str, Any]:
    """Precision@K of the case study's NMF (10 components, seed 42, 150 iterations) and, under the same
    in-sample rules, of plain popularity, for comparison."""
    pivot = protocol_matrix(lines, max_customers)
    matrix = pivot.to_numpy(dtype=np.float64)
    with warnings.catch_warnings():
        # The case study ran 150 iterations whether or not NMF converged; so does this reproduction.
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = NMF(n_components=10, random_state=42, max_iter=150)
        scores = model.fit_transform(matrix) @ model.components_
    bought = matrix > 0
    popularity = np.broadcast_to(bought.sum(axis=0), bought.shape)
    result: dict[str, Any] = {"customers": matrix.shape[0], "products": matrix.shape[1],
                              "purchased_pairs": int(bought.sum()), "published": PUBLISHED}
    for name, ranking in (("nmf", scores), ("popularity", popularity)):
        order = np.argsort(-ranking, axis=1, kind="stable")
        result[name] = {f"precision@{k}": round(float(np.take_along_axis(bought, order[:, :k], 1).mean()), 4)
                        for k in KS}
    return result

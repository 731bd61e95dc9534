"""Association rules on order baskets (mlxtend), at product or category level."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from mlxtend.frequent_patterns import apriori, association_rules, fpgrowth

Algorithm = Literal["apriori", "fpgrowth"]
RULE_COLUMNS = ["antecedents", "consequents", "antecedent_support", "consequent_support", "support", "confidence",
                "lift"]


def basket_matrix(lines: pd.DataFrame, item_column: str = "product_id") -> tuple[sp.csr_matrix, np.ndarray]:
    """Orders x items, 1 where the order holds the item; items sorted."""
    items, item_idx = np.unique(lines[item_column].to_numpy(dtype=str), return_inverse=True)
    _, order_idx = np.unique(lines["order_id"].to_numpy(dtype=str), return_inverse=True)
    matrix = sp.csr_matrix((np.ones(len(lines), dtype=bool), (order_idx, item_idx)),
                           shape=(int(order_idx.max()) + 1 if len(lines) else 0, len(items)))
    matrix.sum_duplicates()
    matrix.data[:] = True
    return matrix, items


def baskets_from_lists(baskets: Sequence[Sequence[str]]) -> tuple[sp.csr_matrix, np.ndarray]:
    items = np.array(sorted({item for basket in baskets for item in basket}), dtype=str)
    index = {item: i for i, item in enumerate(items)}
    rows = np.repeat(np.arange(len(baskets)), [len(set(b)) for b in baskets])
    cols = np.array([index[item] for basket in baskets for item in dict.fromkeys(basket)], dtype=np.int64)
    return sp.csr_matrix((np.ones(len(cols), dtype=bool), (rows, cols)), shape=(len(baskets), len(items))), items


def frequent_itemsets(
    baskets: sp.csr_matrix, items: np.ndarray, min_support: float, max_len: int | None = None,
    algorithm: Algorithm = "apriori",
) -> pd.DataFrame:
    """Columns support, itemsets (frozensets of item labels). Items below min_support are dropped first, which
    leaves the result unchanged and keeps the one-hot frame small enough to be dense (faster than sparse here).
    Apriori runs in mlxtend's low-memory mode: the default materialises every candidate x basket and, on Online
    Retail at support 0.005, ran out of 23 GB."""
    counts = np.asarray(baskets.sum(axis=0)).ravel()
    keep = np.flatnonzero(counts >= min_support * baskets.shape[0])
    onehot = pd.DataFrame(baskets[:, keep].toarray().astype(bool), columns=list(items[keep]))
    if onehot.shape[1] == 0:
        return pd.DataFrame({"support": pd.Series(dtype=float), "itemsets": pd.Series(dtype=object)})
    if algorithm == "apriori":
        found: pd.DataFrame = apriori(onehot, min_support=min_support, use_colnames=True, max_len=max_len,
                                      low_memory=True)
    else:
        found = fpgrowth(onehot, min_support=min_support, use_colnames=True, max_len=max_len)
    return found


def mine_rules(
    baskets: sp.csr_matrix, items: np.ndarray, min_support: float, min_confidence: float,
    max_len: int | None = 2, algorithm: Algorithm = "apriori", min_lift: float = 0.0,
) -> pd.DataFrame:
    """Rules A -> C with support, confidence and lift, best confidence first. Antecedents and consequents are
    sorted tuples of item labels."""
    itemsets = frequent_itemsets(baskets, items, min_support, max_len, algorithm)
    if itemsets.empty or itemsets["itemsets"].map(len).max() < 2:
        return pd.DataFrame(columns=RULE_COLUMNS)
    rules = association_rules(itemsets, num_itemsets=baskets.shape[0], metric="confidence",
                              min_threshold=min_confidence,
                              return_metrics=["antecedent support", "consequent support", "support", "confidence",
                                              "lift"])
    rules = rules.rename(columns={"antecedent support": "antecedent_support",
                                  "consequent support": "consequent_support"})
    rules = rules[rules["lift"] >= min_lift]
    rules["antecedents"] = rules["antecedents"].map(lambda s: tuple(sorted(s)))
    rules["consequents"] = rules["consequents"].map(lambda s: tuple(sorted(s)))
    return ranked_rules(rules)


def ranked_rules(rules: pd.DataFrame) -> pd.DataFrame:
    """The rule table every miner returns: RULE_COLUMNS, best confidence first, then lift, then support (ties
    keep the order they came in)."""
    ordered = rules.sort_values(["confidence", "lift", "support"], ascending=False, kind="stable")
    result: pd.DataFrame = ordered[RULE_COLUMNS].reset_index(drop=True)
    return result


def fire(rules: pd.DataFrame, product_ids: np.ndarray, held: sp.csr_matrix) -> sp.csr_matrix:
    """For each row of `held` (customers x products, nonzero = holds the item), the best confidence of any rule
    whose antecedent the row holds completely, per consequent product. Rules with multi-item consequents score
    each of their items."""
    if rules.empty:
        return sp.csr_matrix(held.shape, dtype=np.float32)
    index = {p: i for i, p in enumerate(product_ids)}
    usable = rules[rules["antecedents"].map(lambda a: all(x in index for x in a))
                   & rules["consequents"].map(lambda c: all(x in index for x in c))]
    antecedent = _indicator(usable["antecedents"], index, len(product_ids))
    size = np.asarray(antecedent.sum(axis=1)).ravel()
    binary = held.copy().astype(np.float32)
    binary.data[:] = 1.0
    matched = (binary @ antecedent.T).tocoo()
    full = matched.data >= size[matched.col]
    fired = sp.csr_matrix((np.ones(int(full.sum()), dtype=np.float32), (matched.row[full], matched.col[full])),
                          shape=(held.shape[0], len(usable)))
    consequent = _indicator(usable["consequents"], index, len(product_ids)).tocsc()
    confidence = usable["confidence"].to_numpy(dtype=np.float32)
    return _max_product(fired, consequent.multiply(confidence[:, None]).tocsr())


def _indicator(itemsets: pd.Series, index: dict[str, int], n_items: int) -> sp.csr_matrix:
    rows = np.repeat(np.arange(len(itemsets)), itemsets.map(len).to_numpy())
    cols = np.array([index[x] for items in itemsets for x in items], dtype=np.int64)
    return sp.csr_matrix((np.ones(len(cols), dtype=np.float32), (rows, cols)), shape=(len(itemsets), n_items))


def _max_product(fired: sp.csr_matrix, weights: sp.csr_matrix) -> sp.csr_matrix:
    """(fired @ weights) with max instead of sum: the strongest rule decides, several weak ones do not add up."""
    fired = fired.tocoo()
    weights = weights.tocsr()
    per_rule = np.diff(weights.indptr)
    repeats = per_rule[fired.col]
    users = np.repeat(fired.row, repeats)
    starts = np.repeat(weights.indptr[fired.col], repeats)
    offsets = np.arange(len(users)) - np.repeat(np.cumsum(repeats) - repeats, repeats)
    slots = starts + offsets
    best = pd.DataFrame({"user": users, "item": weights.indices[slots], "w": weights.data[slots]})
    best = best.groupby(["user", "item"], sort=False)["w"].max().reset_index()
    return sp.csr_matrix(
        (best["w"].to_numpy(np.float32), (best["user"].to_numpy(), best["item"].to_numpy())),
        shape=(fired.shape[0], weights.shape[1]),
    )

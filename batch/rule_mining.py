"""Association rules on order baskets, at product or category level.

Single products and pairs are counted exactly from a sparse co-occurrence matrix (baskets' X'X over the products
that pass the support threshold: a pair can only be frequent if both its products are). Only itemsets of three
or more go to mlxtend's Apriori / FP-growth, on a one-hot of the frequent products in the baskets that hold at
least three of them. So 1.5M baskets x 100k products cost one sparse product, not a dense frame."""

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
    item_idx, items = pd.factorize(lines[item_column].astype(str), sort=True)
    order_idx, orders = pd.factorize(lines["order_id"])
    matrix = sp.csr_matrix((np.ones(len(lines), dtype=bool), (order_idx, item_idx)),
                           shape=(len(orders), len(items)))
    matrix.sum_duplicates()
    matrix.data[:] = True
    return matrix, np.asarray(items, dtype=str)


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
    """Columns support, itemsets (frozensets of item labels), every itemset with support >= min_support.
    Singles and pairs are exact counts; `algorithm` mines the longer ones (Apriori in mlxtend's low-memory mode:
    its default materialises every candidate x basket and, on Online Retail at support 0.005, ran out of 23 GB)."""
    n = baskets.shape[0]
    counts = np.asarray(baskets.sum(axis=0)).ravel().astype(np.int64)
    frequent = np.flatnonzero(counts / max(n, 1) >= min_support)
    found = [_itemsets(frequent[:, None], counts[frequent], n, items)]
    if (max_len is None or max_len >= 2) and len(frequent) >= 2:
        pairs, pair_counts = pair_counts_of(baskets, frequent)
        keep = pair_counts / n >= min_support
        found.append(_itemsets(pairs[keep], pair_counts[keep], n, items))
    if max_len is None or max_len >= 3:
        found.append(_longer_itemsets(baskets, items, frequent, min_support, max_len, algorithm))
    return pd.concat(found, ignore_index=True)


def pair_counts_of(baskets: sp.csr_matrix, columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every pair (i < j) of `columns` bought together at least once, as column indices, and in how many baskets."""
    sub = sp.csr_matrix(baskets[:, columns], dtype=np.int32)
    together = sp.triu(sub.T @ sub, k=1).tocoo()
    pairs = np.column_stack([columns[together.row], columns[together.col]])
    return pairs, together.data.astype(np.int64)


def _itemsets(members: np.ndarray, counts: np.ndarray, n: int, items: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"support": np.asarray(counts, dtype=np.float64) / max(n, 1),
                         "itemsets": pd.Series([frozenset(str(x) for x in items[list(m)]) for m in members],
                                               dtype=object)})


def _longer_itemsets(baskets: sp.csr_matrix, items: np.ndarray, frequent: np.ndarray, min_support: float,
                     max_len: int | None, algorithm: Algorithm) -> pd.DataFrame:
    """Itemsets of three or more from the library, on the baskets holding three or more frequent items (no
    other basket can contain one); supports are counted back against all baskets."""
    n = baskets.shape[0]
    sub = sp.csr_matrix(baskets[:, frequent])
    rows = np.flatnonzero(np.diff(sub.indptr) >= 3)
    empty = pd.DataFrame({"support": pd.Series(dtype=float), "itemsets": pd.Series(dtype=object)})
    if len(rows) == 0:
        return empty
    onehot = pd.DataFrame(sub[rows].toarray().astype(bool), columns=[str(x) for x in items[frequent]])
    # The same count threshold, as a support of the smaller set of baskets (a hair lower, then checked exactly).
    local = min_support * n / len(rows) * (1 - 1e-9)
    if algorithm == "apriori":
        mined: pd.DataFrame = apriori(onehot, min_support=min(local, 1.0), use_colnames=True, max_len=max_len,
                                      low_memory=True)
    else:
        mined = fpgrowth(onehot, min_support=min(local, 1.0), use_colnames=True, max_len=max_len)
    mined = mined[mined["itemsets"].map(len) >= 3]
    count = np.rint(mined["support"].to_numpy() * len(rows))
    mined = mined.assign(support=count / n)[count / n >= min_support]
    return mined.reset_index(drop=True) if len(mined) else empty


def mine_rules(
    baskets: sp.csr_matrix, items: np.ndarray, min_support: float, min_confidence: float,
    max_len: int | None = 2, algorithm: Algorithm = "apriori", min_lift: float = 0.0,
) -> pd.DataFrame:
    """Rules A -> C with support, confidence and lift, best confidence first. Antecedents and consequents are
    sorted tuples of item labels. Pair rules come straight from the counts; longer ones through mlxtend."""
    if max_len is not None and max_len <= 2:
        rules = _pair_rules(baskets, items, min_support, min_confidence)
    else:
        itemsets = frequent_itemsets(baskets, items, min_support, max_len, algorithm)
        if itemsets.empty or itemsets["itemsets"].map(len).max() < 2:
            return pd.DataFrame(columns=RULE_COLUMNS)
        rules = association_rules(itemsets, num_itemsets=baskets.shape[0], metric="confidence",
                                  min_threshold=min_confidence,
                                  return_metrics=["antecedent support", "consequent support", "support",
                                                  "confidence", "lift"])
        rules = rules.rename(columns={"antecedent support": "antecedent_support",
                                      "consequent support": "consequent_support"})
        rules["antecedents"] = rules["antecedents"].map(lambda s: tuple(sorted(s)))
        rules["consequents"] = rules["consequents"].map(lambda s: tuple(sorted(s)))
    rules = rules[rules["lift"] >= min_lift]
    return ranked_rules(rules)


def ranked_rules(rules: pd.DataFrame) -> pd.DataFrame:
    """The rule table every miner returns: RULE_COLUMNS, best confidence first, then lift, then support (ties
    keep the order they came in)."""
    ordered = rules.sort_values(["confidence", "lift", "support"], ascending=False, kind="stable")
    result: pd.DataFrame = ordered[RULE_COLUMNS].reset_index(drop=True)
    return result


def _pair_rules(baskets: sp.csr_matrix, items: np.ndarray, min_support: float,
                min_confidence: float) -> pd.DataFrame:
    """Both directions of every frequent pair, with the same definitions as mlxtend's association_rules."""
    n = max(baskets.shape[0], 1)
    counts = np.asarray(baskets.sum(axis=0)).ravel().astype(np.int64)
    frequent = np.flatnonzero(counts / n >= min_support)
    if len(frequent) < 2:
        return pd.DataFrame(columns=RULE_COLUMNS)
    pairs, together = pair_counts_of(baskets, frequent)
    return pair_rules_from_counts(n, items, counts, pairs, together, min_support, min_confidence)


def pair_rules_from_counts(n: int, items: np.ndarray, counts: np.ndarray, pairs: np.ndarray, together: np.ndarray,
                           min_support: float, min_confidence: float) -> pd.DataFrame:
    """Both directions of every frequent pair, with the same definitions as mlxtend's association_rules, from the
    counts: `n` baskets, `counts[i]` baskets holding item i, and pair k (`pairs[k]`, two item indices) held
    together by `together[k]` baskets. Shared by the single-machine and the Spark engine's counting."""
    keep = together / n >= min_support
    pairs, together = pairs[keep], together[keep]
    antecedent = np.concatenate([pairs[:, 0], pairs[:, 1]])
    consequent = np.concatenate([pairs[:, 1], pairs[:, 0]])
    both = np.concatenate([together, together]) / n
    confidence = both / (counts[antecedent] / n)
    strong = confidence >= min_confidence
    antecedent, consequent, both, confidence = antecedent[strong], consequent[strong], both[strong], confidence[strong]
    consequent_support = counts[consequent] / n
    return pd.DataFrame({
        "antecedents": pd.Series([(str(items[a]),) for a in antecedent], dtype=object),
        "consequents": pd.Series([(str(items[c]),) for c in consequent], dtype=object),
        "antecedent_support": counts[antecedent] / n, "consequent_support": consequent_support,
        "support": both, "confidence": confidence, "lift": confidence / consequent_support,
    })


def fire(rules: pd.DataFrame, product_ids: np.ndarray, held: sp.csr_matrix, metric: str = "confidence"
         ) -> sp.csr_matrix:
    """For each row of `held` (customers x products, nonzero = holds the item), the best `metric` (confidence or
    lift) of any rule whose antecedent the row holds completely, per consequent product. Rules with multi-item
    consequents score each of their items."""
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
    strength = usable[metric].to_numpy(dtype=np.float32)
    return _max_product(fired, consequent.multiply(strength[:, None]).tocsr())


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

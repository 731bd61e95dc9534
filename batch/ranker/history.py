"""What the ranker knows of a customer, a product and the pair, computed once per training window from its lines,
strictly before the window's end (the cut-off): how often and how recently the customer bought the product
(counts, frequency decayed at several half-lives, as TIFU-KNN's vector does; days and baskets since they last
bought it), their buy cycle for it (the median days between their purchases of it, and how far into that cycle
they are now: Katz et al., RecSys 2022), the product's repurchase rate and typical cycle across customers, its
popularity and trend, and the customer's habits (orders, recency, basket size, their share of lines in the
product's category)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from batch.interactions import SECONDS_PER_DAY, Interactions
from batch.models.topk import find_sorted

HALF_LIVES_DAYS = (7.0, 30.0, 90.0, 365.0)
RECENT_DAYS = 14.0
PAIR_FEATURES = ("orders", "amount", *(f"freq_hl{h:g}" for h in HALF_LIVES_DAYS), "days_since", "baskets_since",
                 "cycle_days", "cycle_ratio")
CUSTOMER_FEATURES = ("customer_orders", "customer_recency", "customer_basket_size", "customer_products",
                     "customer_active_days")
PRODUCT_FEATURES = ("product_buyers", "product_buyers_14d", "product_trend", "product_repurchase_rate",
                    "product_cycle_days")
FEATURES = (*PAIR_FEATURES, *CUSTOMER_FEATURES, *PRODUCT_FEATURES, "category_share")
# The features of the buy cycle (the ablation "no buy-cycle features" drops them).
CYCLE_FEATURES = ("days_since", "baskets_since", "cycle_days", "cycle_ratio", "product_repurchase_rate",
                  "product_cycle_days")


@dataclass
class History:
    """Per-pair features of every (customer, product) the window holds, keyed by row * n_products + col (sorted,
    for vectorised lookups); per-customer and per-product features; each customer's line share per category."""

    n_products: int
    pair_keys: np.ndarray
    pair: np.ndarray  # (pairs, len(PAIR_FEATURES)) float32
    customer: np.ndarray  # (customers, len(CUSTOMER_FEATURES)) float32
    product: np.ndarray  # (products, len(PRODUCT_FEATURES)) float32
    product_category: np.ndarray  # category index per product
    category_share: sp.csr_matrix  # customers x categories

    @classmethod
    def of(cls, data: Interactions) -> History:
        lines = data.lines
        rows, cols = data.line_rows, data.line_cols
        end = data.end
        days_ago = ((end - lines["event_time"]).dt.total_seconds().to_numpy() / SECONDS_PER_DAY).astype(np.float64)
        frame = pd.DataFrame({"row": rows, "col": cols, "order": data.line_orders,
                              "days_ago": days_ago, "amount": lines["amount"].to_numpy(dtype=np.float64)})
        pair = _pair_features(frame, data)
        customer = _customer_features(frame, len(data.customer_ids))
        product = _product_features(pair, data)
        categories, product_category = np.unique(_product_categories(lines, data.product_ids), return_inverse=True)
        share = sp.csr_matrix((np.ones(len(frame), dtype=np.float32), (rows, product_category[cols])),
                              shape=(len(data.customer_ids), len(categories)))
        totals = np.asarray(share.sum(axis=1)).ravel()
        share = sp.csr_matrix(sp.diags(1.0 / np.maximum(totals, 1.0)) @ share)
        return cls(len(data.product_ids), pair.index.to_numpy(dtype=np.int64),
                   pair[list(PAIR_FEATURES)].to_numpy(dtype=np.float32), customer, product,
                   product_category.astype(np.int64), share)

    def arrays(self) -> dict[str, np.ndarray]:
        share = self.category_share
        return {"n_products": np.array([self.n_products]), "pair_keys": self.pair_keys, "pair": self.pair,
                "customer": self.customer, "product": self.product, "product_category": self.product_category,
                "share_data": share.data, "share_indices": share.indices, "share_indptr": share.indptr,
                "share_shape": np.array(share.shape)}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> History:
        share = sp.csr_matrix((arrays["share_data"], arrays["share_indices"], arrays["share_indptr"]),
                              shape=tuple(arrays["share_shape"]))
        return cls(int(arrays["n_products"][0]), arrays["pair_keys"], arrays["pair"], arrays["customer"],
                   arrays["product"], arrays["product_category"], share)

    def features(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """FEATURES for each (row, col) pair (NaN where a pair feature is undefined: never bought, one purchase)."""
        out = np.full((len(rows), len(FEATURES)), np.nan, dtype=np.float32)
        keys = rows.astype(np.int64) * self.n_products + cols
        at, held = find_sorted(self.pair_keys, keys)
        n_pair, n_customer, n_product = len(PAIR_FEATURES), len(CUSTOMER_FEATURES), len(PRODUCT_FEATURES)
        out[held, :n_pair] = self.pair[at[held]]
        out[~held, :2] = 0.0  # never bought: no orders, no money; the frequencies are zero too
        out[~held, 2:2 + len(HALF_LIVES_DAYS)] = 0.0
        out[:, n_pair:n_pair + n_customer] = self.customer[rows]
        out[:, n_pair + n_customer:n_pair + n_customer + n_product] = self.product[cols]
        out[:, -1] = np.asarray(self.category_share[rows, self.product_category[cols]]).ravel()
        return out


def _pair_features(frame: pd.DataFrame, data: Interactions) -> pd.DataFrame:
    """Per (customer, product) pair, indexed by its key (row * products + col), sorted. The lines are sorted once
    by (key, order) and every feature is a reduction over runs of that order: pandas' groupby hashed ten million
    keys again for each of the dozen aggregations (a profile of the 10M-line shop: 34 s of 39)."""
    n_products = len(data.product_ids)
    row, order = frame["row"].to_numpy(np.int64), frame["order"].to_numpy(np.int64)
    key = row * n_products + frame["col"].to_numpy(np.int64)
    days, amount = frame["days_ago"].to_numpy(np.float64), frame["amount"].to_numpy(np.float64)
    seq, n_orders = _basket_sequence(row, order, days)
    by_pair = np.lexsort((order, key))  # stable: equal (key, order) keep the lines' order
    key, order, days, amount, seq = key[by_pair], order[by_pair], days[by_pair], amount[by_pair], seq[by_pair]
    starts = _run_starts(key)
    first_of_order = _run_starts(key, order)  # each (pair, order) once: its first line, as drop_duplicates kept
    pair_of_order = np.searchsorted(starts, first_of_order, side="right") - 1
    pairs = key[starts]
    out = pd.DataFrame({
        "orders": np.bincount(pair_of_order, minlength=len(starts)).astype(np.float64),
        "amount": np.add.reduceat(amount, starts), "days_since": np.minimum.reduceat(days, starts),
        "last_seq": np.maximum.reduceat(seq, starts)}, index=pd.Index(pairs, name="key"))
    for half_life in HALF_LIVES_DAYS:
        decayed = np.power(0.5, days[first_of_order] / half_life)
        out[f"freq_hl{half_life:g}"] = np.bincount(pair_of_order, weights=decayed, minlength=len(starts))
    out["baskets_since"] = n_orders[pairs // n_products] - 1 - out["last_seq"].to_numpy()
    out["cycle_days"] = _median_gaps(key, days, pairs)
    out["cycle_ratio"] = out["days_since"] / out["cycle_days"]
    return out


def _run_starts(*columns: np.ndarray) -> np.ndarray:
    """Where a run of equal values (in all of `columns`, sorted together) starts."""
    changed = np.zeros(len(columns[0]), dtype=bool)
    changed[:1] = True
    for column in columns:
        changed[1:] |= column[1:] != column[:-1]
    return np.flatnonzero(changed)


def _basket_sequence(row: np.ndarray, order: np.ndarray, days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each line's basket number in its customer's history (0: the oldest; ties in time keep the lines' order),
    and each customer's number of baskets."""
    at = np.lexsort((order, row))
    firsts = at[_run_starts(row[at], order[at])]  # each (customer, order) once, at its first line
    firsts = np.sort(firsts)  # back in the lines' order, so that a stable sort breaks ties as the lines came
    oldest_first = firsts[np.lexsort((-days[firsts], row[firsts]))]
    owner = row[oldest_first]
    starts = _run_starts(owner)
    number = np.arange(len(oldest_first)) - np.repeat(starts, np.diff(np.r_[starts, len(oldest_first)]))
    n_orders = np.zeros(int(row.max()) + 1 if len(row) else 0, dtype=np.int64)
    n_orders[owner[starts]] = np.diff(np.r_[starts, len(oldest_first)])
    combined = row * (int(order.max()) + 1 if len(order) else 1) + order
    baskets = combined[oldest_first]
    by_basket = np.argsort(baskets, kind="stable")
    seq = number[by_basket][np.searchsorted(baskets[by_basket], combined)]
    return seq.astype(np.float64), n_orders


def _median_gaps(key: np.ndarray, days: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Per pair (`pairs`: the sorted keys), the median of the days between consecutive purchase days (NaN with
    fewer than two)."""
    day = np.floor(days)
    at = np.lexsort((-day, key))
    key, day = key[at], day[at]
    distinct = _run_starts(key, day)
    key, day = key[distinct], day[distinct]
    same = key[1:] == key[:-1]
    gap_key, gap = key[1:][same], (day[:-1] - day[1:])[same]
    at = np.lexsort((gap, gap_key))
    gap_key, gap = gap_key[at], gap[at]
    out = np.full(len(pairs), np.nan)
    if not len(gap):
        return out
    starts = _run_starts(gap_key)
    counts = np.diff(np.r_[starts, len(gap)])
    medians = (gap[starts + (counts - 1) // 2] + gap[starts + counts // 2]) / 2
    out[np.searchsorted(pairs, gap_key[starts])] = medians
    return out


def _customer_features(frame: pd.DataFrame, n_customers: int) -> np.ndarray:
    grouped = frame.groupby("row")
    table = pd.DataFrame({
        "customer_orders": grouped["order"].nunique(),
        "customer_recency": grouped["days_ago"].min(),
        "customer_basket_size": grouped.size() / grouped["order"].nunique(),
        "customer_products": grouped["col"].nunique(),
        "customer_active_days": grouped["days_ago"].max() - grouped["days_ago"].min(),
    }).reindex(range(n_customers))
    return table[list(CUSTOMER_FEATURES)].to_numpy(dtype=np.float32)


def _product_features(pair: pd.DataFrame, data: Interactions) -> np.ndarray:
    n_products = len(data.product_ids)
    cols = (pair.index.to_numpy() % n_products).astype(np.int64)
    by_product = pd.DataFrame({"col": cols, "repeat": pair["orders"].to_numpy() >= 2,
                               "cycle": pair["cycle_days"].to_numpy()}).groupby("col")
    buyers = data.popularity().astype(np.float64)
    recent = data.popularity(RECENT_DAYS).astype(np.float64)
    span = max((data.end - data.start).total_seconds() / SECONDS_PER_DAY, RECENT_DAYS)
    table = pd.DataFrame({
        "product_buyers": buyers,
        "product_buyers_14d": recent,
        # The recent share of buyers against what an even spread over the window would give.
        "product_trend": recent / np.maximum(buyers, 1.0) * span / RECENT_DAYS,
        "product_repurchase_rate": by_product["repeat"].mean().reindex(range(n_products)).to_numpy(),
        "product_cycle_days": by_product["cycle"].median().reindex(range(n_products)).to_numpy(),
    })
    return table[list(PRODUCT_FEATURES)].to_numpy(dtype=np.float32)


def _product_categories(lines: pd.DataFrame, product_ids: np.ndarray) -> np.ndarray:
    latest = lines.drop_duplicates("product_id", keep="last").set_index("product_id")["category"]
    return latest.reindex(product_ids).fillna("unknown").astype(str).to_numpy()

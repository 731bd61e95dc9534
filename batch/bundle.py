"""What a model version publishes, shaped as the API serves it: each customer's top list, best-sellers, product
and category rules, segments and product names."""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

import numpy as np
import pandas as pd

from batch.cycles import buy_cycles
from batch.models import Recommender, RulesRecommender
from batch.publish import ModelBundle
from batch.rule_mining import basket_matrix, mine_rules
from common import toplist

TOP_N = 50
POPULAR_N = 100
RULES_PER_PRODUCT = 20
CATEGORY_RULES = 200
CATEGORY_MIN_SUPPORT = 0.005  # the case study's setting
CATEGORY_MIN_LIFT = 0.5
CUSTOMERS_PER_REPORT = 20_000  # top lists computed between two progress lines
# Blocks of customers ranked at once. Much of a block's work (sparse products, numpy, LightGBM, implicit's top-k)
# runs outside the GIL: on 2 cores, two threads took the shop-scale run's lists from 491 s to 402 s, the same
# lists (docs/scaling.md). More than the cores only adds memory.
TOP_LIST_THREADS = max(1, min(4, len(os.sched_getaffinity(0))))


class Served(Protocol):
    """What a version publishes lists from: the ranker or the blend, each with its fitted parts by name (the trend
    and rules parts give the best-sellers and the product rules)."""

    customer_ids: np.ndarray
    product_ids: np.ndarray
    models: dict[str, Recommender]

    @property
    def sources(self) -> list[str]:
        """The source (`common.toplist.SOURCE_CODES`) of each part, in `models` order."""

    def top_with_sources(self, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...


def build_bundle(version: str, card: dict[str, Any], hybrid: Served, lines: pd.DataFrame,
                 category_rules: list[dict[str, Any]], segments: pd.DataFrame,
                 segment_summary: pd.DataFrame, *, offers: dict[str, dict[str, Any]] | None = None,
                 cut_points: dict[str, Any] | None = None,
                 cohorts: dict[str, list[dict[str, Any]]] | None = None,
                 progress: Callable[[str], None] = lambda _message: None) -> ModelBundle:
    """The bundle of the served model (the ranker, or the blend) fitted on all of `lines`; its trend and rules parts
    give the best-sellers and the product rules; each customer's buy cycles come from `lines`. Segment offers, RFM
    cut points and cohort best-sellers are published as given."""
    return ModelBundle(
        version=version, card=card, topn=top_lists(hybrid, TOP_N, progress),
        popular=popular_list(hybrid.models["trend"]),
        rules=product_rules(hybrid.models["rules"]), category_rules=category_rules,
        segments=_segment_rows(segments), segment_summary=_records(segment_summary),
        products=_products(lines), offers=offers or {}, cut_points=cut_points, cohorts=cohorts or {},
        cycles=buy_cycles(lines),
    )


def top_lists(hybrid: Served, n: int, progress: Callable[[str], None] = lambda _message: None) -> dict[str, str]:
    """Each customer's top n with the component that contributed most (the API turns it into a reason), in the
    compact stored form of `common.toplist`; a progress line every `CUSTOMERS_PER_REPORT` customers."""
    names, total = hybrid.sources, len(hybrid.customer_ids)
    lists: dict[str, str] = {}
    blocks = [np.arange(start, min(start + CUSTOMERS_PER_REPORT, total))
              for start in range(0, total, CUSTOMERS_PER_REPORT)]
    with ThreadPoolExecutor(TOP_LIST_THREADS) as pool:
        # The first block alone: what a model derives on first use (TIFU-KNN's neighbours, scipy sorting a shared
        # matrix's indices in place) is made before any thread reads it. Then in order, TOP_LIST_THREADS at once.
        first = [hybrid.top_with_sources(blocks[0], n)] if blocks else []
        ranked = itertools.chain(first, pool.map(lambda rows: hybrid.top_with_sources(rows, n), blocks[1:]))
        for rows, (items, scores, sources) in zip(blocks, ranked, strict=True):
            _encode(lists, hybrid, names, rows, items, scores, sources)
            if total > CUSTOMERS_PER_REPORT:
                progress(f"top lists: {rows[-1] + 1:,} of {total:,} customers")
    return lists


def _encode(lists: dict[str, str], hybrid: Served, names: list[str], rows: np.ndarray, items: np.ndarray,
            scores: np.ndarray, sources: np.ndarray) -> None:
    for i, row in enumerate(rows):
            lists[str(hybrid.customer_ids[row])] = toplist.encode(
                [(str(hybrid.product_ids[p]), float(s), names[c])
                 for p, s, c in zip(items[i], scores[i], sources[i], strict=True)])


def popular_list(trend: Any) -> list[dict[str, Any]]:
    order = np.argsort(-trend.counts, kind="stable")[:POPULAR_N]
    return [{"product_id": str(trend.product_ids[i]), "buyers": int(trend.counts[i])} for i in order
            if trend.counts[i] > 0]


def product_rules(rules_model: Recommender) -> dict[str, list[dict[str, Any]]]:
    assert isinstance(rules_model, RulesRecommender)
    out: dict[str, list[dict[str, Any]]] = {}
    single = rules_model.rules[rules_model.rules["antecedents"].map(len) == 1]
    for antecedent, group in single.groupby(single["antecedents"].map(lambda a: a[0]), sort=False):
        out[str(antecedent)] = [
            {"product_id": c[0], "support": round(s, 5), "confidence": round(conf, 4), "lift": round(lift, 3)}
            for c, s, conf, lift in zip(group["consequents"], group["support"], group["confidence"], group["lift"],
                                        strict=True)
        ][:RULES_PER_PRODUCT]
    return out


def category_rules(lines: pd.DataFrame) -> list[dict[str, Any]]:
    baskets, items = basket_matrix(lines, item_column="category")
    rules = mine_rules(baskets, items, CATEGORY_MIN_SUPPORT, 0.0, max_len=3, min_lift=CATEGORY_MIN_LIFT)
    top = rules.head(CATEGORY_RULES).round({"support": 5, "confidence": 4, "lift": 3})
    top = top.assign(antecedents=top["antecedents"].map(list), consequents=top["consequents"].map(list))
    return _records(top[["antecedents", "consequents", "support", "confidence", "lift"]])


def _segment_rows(segments: pd.DataFrame) -> dict[str, dict[str, Any]]:
    columns = ["segment", "r", "f", "m", "recency_days", "frequency", "monetary"]
    rows = _records(segments[columns].astype({"segment": str}))
    return dict(zip(segments["customer_id"].astype(str), rows, strict=True))


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-ready rows (numpy scalars become Python numbers)."""
    records: list[dict[str, Any]] = json.loads(frame.to_json(orient="records"))
    return records


def _products(lines: pd.DataFrame) -> dict[str, dict[str, Any]]:
    latest = lines.drop_duplicates("product_id", keep="last")
    return {str(p): {"name": str(n), "category": str(c)}
            for p, n, c in zip(latest["product_id"], latest["product_name"], latest["category"], strict=True)}

"""Models fitted by Spark MLlib. Fitting reads the staged history; what is kept (factors, rules) is plain numpy and
pandas, so scoring, saving and publishing are the single-machine code."""

from __future__ import annotations

import numpy as np
import pandas as pd
from pyspark.ml.fpm import FPGrowth
from pyspark.ml.recommendation import ALS
from pyspark.sql import functions as F

from batch.interactions import Interactions
from batch.models.factors import AlsRecommender
from batch.models.rules import RulesRecommender
from batch.rule_mining import RULE_COLUMNS, pair_rules_from_counts, ranked_rules
from batch.spark.history import SparkHistory, factor_matrix


def _require(history: SparkHistory | None) -> SparkHistory:
    if history is None:
        raise ValueError("fitting a Spark model needs the staged history (SparkHistory); a loaded one only scores")
    return history


class SparkAlsRecommender(AlsRecommender):
    """The single-machine ALS model (implicit feedback: confidence 1 + alpha x cell, `weighting` says what a cell
    holds), fitted by Spark MLlib instead of `implicit`. MLlib scales the regularisation by each customer's and
    product's number of ratings, so `regularization` does not mean the same as `implicit`'s."""

    name = "spark_als"

    def __init__(self, factors: int = 64, regularization: float = 0.1, alpha: float = 1.0,
                 weighting: str = "log_orders", iterations: int = 10, seed: int = 42,
                 history: SparkHistory | None = None) -> None:
        super().__init__(factors, regularization, alpha, weighting, iterations, seed)
        self.history = history

    def _fit(self, data: Interactions) -> None:
        history = _require(self.history)
        blocks = history.session.sparkContext.defaultParallelism
        als = ALS(rank=self.factors, maxIter=self.iterations, regParam=self.regularization, alpha=self.alpha,
                  implicitPrefs=True, userCol="row", itemCol="col", ratingCol="rating", seed=self.seed,
                  numUserBlocks=blocks, numItemBlocks=blocks)
        model = als.fit(history.ratings(data, self.weighting))
        self.user_factors = factor_matrix(model.userFactors, len(data.customer_ids), self.factors)
        self.item_factors = factor_matrix(model.itemFactors, len(data.product_ids), self.factors)


class SparkRulesRecommender(RulesRecommender):
    """The rules recommender with its rules mined by Spark: pair rules (the default `max_len` 2) counted exactly
    from co-occurrences, longer antecedents by MLlib's FPGrowth, as the single-machine miner splits the work."""

    name = "spark_rules"

    def __init__(self, min_support: float = 0.01, min_confidence: float = 0.1, max_len: int = 2,
                 basket_days: float | None = None, history: SparkHistory | None = None) -> None:
        super().__init__(min_support, min_confidence, max_len, basket_days)
        self.history = history

    def _mine(self, data: Interactions) -> pd.DataFrame:
        history = _require(self.history)
        if self.max_len is not None and self.max_len <= 2:
            return pair_rules(history, data, self.min_support, self.min_confidence)
        return fpgrowth_rules(history, data, self.min_support, self.min_confidence, self.max_len)


def pair_rules(history: SparkHistory, data: Interactions, min_support: float, min_confidence: float
               ) -> pd.DataFrame:
    """Rules a -> c between two products, exactly as the single-machine miner counts them (`mine_rules` with
    max_len 2): baskets per product and per frequent pair are counted by Spark, the rules are built from the
    counts by the same function."""
    held = history.window(data).select("order_id", "product_id").distinct().cache()
    try:
        n = max(held.select("order_id").distinct().count(), 1)
        per_item = held.groupBy("product_id").count().orderBy("product_id").toArrow()
        items = np.asarray(per_item.column("product_id").to_pylist(), dtype=str)
        counts = per_item.column("count").to_numpy().astype(np.int64)
        frequent = held.join(held.groupBy("product_id").count().where(F.col("count") / n >= min_support)
                             .select("product_id"), "product_id")
        left, right = frequent.alias("a"), frequent.alias("b")
        together = (left.join(right, F.col("a.order_id") == F.col("b.order_id"))
                    .where(F.col("a.product_id") < F.col("b.product_id"))
                    .groupBy(F.col("a.product_id").alias("first"), F.col("b.product_id").alias("second")).count()
                    .where(F.col("count") / n >= min_support).toArrow())
    finally:
        held.unpersist()
    if together.num_rows == 0:
        return pd.DataFrame(columns=RULE_COLUMNS)
    at = {item: i for i, item in enumerate(items)}
    pairs = np.column_stack([[at[p] for p in together.column(c).to_pylist()] for c in ("first", "second")])
    pairs = np.sort(pairs, axis=1)  # item order as the single-machine count gives it (i < j), then pair order
    order = np.lexsort((pairs[:, 1], pairs[:, 0]))
    found = pair_rules_from_counts(n, items, counts, pairs[order],
                                   together.column("count").to_numpy().astype(np.int64)[order], min_support,
                                   min_confidence)
    return ranked_rules(found)


def fpgrowth_rules(history: SparkHistory, data: Interactions, min_support: float, min_confidence: float,
                   max_len: int | None) -> pd.DataFrame:
    """Rules A -> c (one consequent) of the window's orders by MLlib's FPGrowth, with antecedents of at most
    max_len - 1 products, in the single-machine miner's table (RULE_COLUMNS, best confidence first; ties in
    antecedent then consequent order)."""
    growth = FPGrowth(itemsCol="items", minSupport=min_support, minConfidence=min_confidence)
    rules = growth.fit(history.baskets(data)).associationRules
    if max_len is not None:
        rules = rules.where(F.size("antecedent") + 1 <= max_len)
    table = rules.select("antecedent", "consequent", "support", "confidence", "lift").toArrow().to_pylist()
    if not table:
        return pd.DataFrame(columns=RULE_COLUMNS)
    frame = pd.DataFrame(table)
    frame["antecedents"] = frame["antecedent"].map(lambda items: tuple(sorted(items)))
    frame["consequents"] = frame["consequent"].map(tuple)
    # Spark gives support, confidence and lift; the two marginal supports follow from them.
    frame["antecedent_support"] = frame["support"] / frame["confidence"]
    frame["consequent_support"] = frame["confidence"] / frame["lift"]
    frame = frame.sort_values(["antecedents", "consequents"], kind="stable")
    return ranked_rules(frame)

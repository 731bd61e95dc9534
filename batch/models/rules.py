"""Association rules as a recommender: rules fired by what the customer bought recently."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from batch.interactions import Interactions
from batch.models.base import Recommender, sparse_arrays, sparse_from
from batch.models.topk import CANDIDATE_POOL, Candidates
from batch.rule_mining import RULE_COLUMNS, basket_matrix, fire, mine_rules


class RulesRecommender(Recommender):
    """Score of a product = the best confidence among rules whose antecedent lies within the customer's products
    of the last `basket_days` days of the window (all their products when None)."""

    name = "rules"
    ranks_by_candidates = True

    def __init__(self, min_support: float = 0.01, min_confidence: float = 0.1, max_len: int = 2,
                 basket_days: float | None = None) -> None:
        super().__init__()
        self.min_support = min_support
        self.min_confidence = min_confidence
        self.max_len = max_len
        self.basket_days = basket_days
        self.rules = pd.DataFrame(columns=RULE_COLUMNS)
        self.fired = sp.csr_matrix((0, 0), dtype=np.float32)

    def _fit(self, data: Interactions) -> None:
        self.rules = self._mine(data)
        self.fired = fire(self.rules, data.product_ids, data.bought_within(self.basket_days))

    def _mine(self, data: Interactions) -> pd.DataFrame:
        """The rules of the training window (`mine_rules`); the Spark engine mines them with FPGrowth."""
        baskets, items = basket_matrix(data.lines)
        return mine_rules(baskets, items, self.min_support, self.min_confidence, self.max_len)

    def _score(self, rows: np.ndarray) -> np.ndarray:
        dense: np.ndarray = self.fired[rows].toarray().astype(np.float64)
        return dense

    def candidate_width(self) -> int:
        return CANDIDATE_POOL

    def candidates(self, rows: np.ndarray, pool: int, exclude_seen: bool) -> Candidates:
        del pool  # the fired rules are sparse: all of them are candidates
        found = Candidates.sparse(sp.csr_matrix(self.fired[rows]))
        return found.without(self.seen[rows]) if exclude_seen else found

    def params(self) -> dict[str, Any]:
        return {"min_support": self.min_support, "min_confidence": self.min_confidence, "max_len": self.max_len,
                "basket_days": self.basket_days}

    def _arrays(self) -> dict[str, np.ndarray]:
        return {
            "antecedents": np.array(["\x1f".join(a) for a in self.rules["antecedents"]], dtype=str),
            "consequents": np.array(["\x1f".join(c) for c in self.rules["consequents"]], dtype=str),
            "metrics": self.rules[RULE_COLUMNS[2:]].to_numpy(dtype=np.float64),
        } | sparse_arrays("fired", self.fired)

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        rules = pd.DataFrame(arrays["metrics"].reshape(-1, len(RULE_COLUMNS) - 2), columns=RULE_COLUMNS[2:])
        rules.insert(0, "consequents", [tuple(c.split("\x1f")) for c in arrays["consequents"]])
        rules.insert(0, "antecedents", [tuple(a.split("\x1f")) for a in arrays["antecedents"]])
        self.rules = rules
        self.fired = sparse_from(arrays, "fired", self.shape)

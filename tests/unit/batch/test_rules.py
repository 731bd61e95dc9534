from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from mlxtend.frequent_patterns import apriori, association_rules

from batch.rule_mining import baskets_from_lists, fire, frequent_itemsets, mine_rules
from tests.conftest import GROCERIES_PATH

BASKETS = [["milk", "bread"], ["milk", "bread", "eggs"], ["milk"], ["bread", "eggs"], ["milk", "bread"]]


def test_support_confidence_lift_hand_computed() -> None:
    matrix, items = baskets_from_lists(BASKETS)
    rules = mine_rules(matrix, items, min_support=0.2, min_confidence=0.0)
    rule = rules[(rules["antecedents"] == ("milk",)) & (rules["consequents"] == ("bread",))].iloc[0]
    # milk in 4 of 5 baskets, bread in 4, both in 3
    assert rule["support"] == pytest.approx(3 / 5)
    assert rule["confidence"] == pytest.approx(3 / 4)
    assert rule["lift"] == pytest.approx((3 / 4) / (4 / 5))
    assert rules["confidence"].is_monotonic_decreasing


def test_apriori_and_fpgrowth_find_the_same_itemsets() -> None:
    matrix, items = baskets_from_lists(BASKETS * 3 + [["eggs", "jam"], ["jam"]])
    apriori = frequent_itemsets(matrix, items, 0.1, algorithm="apriori")
    fpgrowth = frequent_itemsets(matrix, items, 0.1, algorithm="fpgrowth")
    assert _by_itemset(apriori) == _by_itemset(fpgrowth)


def test_counted_pairs_and_mined_triples_equal_the_library_on_the_whole_one_hot() -> None:
    """Singles and pairs come from the sparse count, triples from the library on a subset of baskets and items:
    together they must be exactly what mlxtend finds on every basket and item."""
    rng = np.random.default_rng(5)
    weights = 1.0 / np.arange(1, 31)
    baskets = [[f"i{j}" for j in rng.choice(30, size=int(rng.integers(1, 7)), replace=False,
                                            p=weights / weights.sum())] for _ in range(400)]
    matrix, items = baskets_from_lists(baskets)
    onehot = pd.DataFrame(matrix.toarray(), columns=list(items))
    expected = _by_itemset(apriori(onehot, min_support=0.02, use_colnames=True, max_len=3))
    assert any(len(s) == 3 for s in expected)
    assert _by_itemset(frequent_itemsets(matrix, items, 0.02, max_len=3)) == expected
    triples = mine_rules(matrix, items, min_support=0.02, min_confidence=0.0, max_len=3)
    assert triples["antecedents"].map(len).max() == 2  # rules from triples come through association_rules
    rules = mine_rules(matrix, items, min_support=0.02, min_confidence=0.1, max_len=2)
    library = association_rules(apriori(onehot, min_support=0.02, use_colnames=True, max_len=2),
                                num_itemsets=len(baskets), metric="confidence", min_threshold=0.1)
    assert len(rules) == len(library)
    by_pair = {(tuple(a), tuple(c)): conf for a, c, conf in zip(library["antecedents"], library["consequents"],
                                                              library["confidence"], strict=True)}
    for a, c, conf in zip(rules["antecedents"], rules["consequents"], rules["confidence"], strict=True):
        assert conf == pytest.approx(by_pair[(a, c)])


def _by_itemset(found: pd.DataFrame) -> dict[frozenset[str], float]:
    return dict(zip(found["itemsets"], found["support"].round(12), strict=True))


def test_fire_takes_the_strongest_rule_whose_antecedent_is_held_completely() -> None:
    rules = pd.DataFrame({
        "antecedents": [("a",), ("b",), ("a", "c")], "consequents": [("x",), ("x",), ("y",)],
        "antecedent_support": 0.0, "consequent_support": 0.0, "support": 0.0, "confidence": [0.3, 0.6, 0.9],
        "lift": 1.0,
    })
    products = np.array(["a", "b", "c", "x", "y"])
    held = sp.csr_matrix(np.array([[1, 1, 0, 0, 0], [1, 0, 0, 0, 0], [1, 0, 1, 0, 0]], dtype=np.float32))
    fired = fire(rules, products, held).toarray()
    assert fired[0, 3] == pytest.approx(0.6) and fired[0, 4] == 0  # a and b held: best rule to x; no c
    assert fired[1, 3] == pytest.approx(0.3)
    assert fired[2, 4] == pytest.approx(0.9) and fired[2, 3] == pytest.approx(0.3)


@pytest.mark.realdata
def test_groceries_rules_match_a_brute_force_count() -> None:
    if not GROCERIES_PATH.exists():
        pytest.skip(f"{GROCERIES_PATH} not present")
    baskets = [line.rstrip("\n").split(",") for line in GROCERIES_PATH.read_text().splitlines()]
    assert len(baskets) == 9835
    matrix, items = baskets_from_lists(baskets)
    rules = mine_rules(matrix, items, min_support=0.01, min_confidence=0.1, max_len=2)

    sets = [set(b) for b in baskets]
    count = {item: sum(item in s for s in sets) for item in items}
    frequent = [i for i in items if count[i] >= 0.01 * len(sets)]
    pair_count: dict[tuple[str, str], int] = {}
    for a, b in combinations(sorted(frequent), 2):
        together = sum(a in s and b in s for s in sets)
        if together >= 0.01 * len(sets):
            pair_count[(a, b)] = together
    expected = set()
    for (a, b), n in pair_count.items():
        for x, y in ((a, b), (b, a)):
            if n / count[x] >= 0.1:
                expected.add((x, y))
    assert set(zip(rules["antecedents"].str[0], rules["consequents"].str[0], strict=True)) == expected
    for rule in rules.to_dict(orient="records"):
        a, c = rule["antecedents"][0], rule["consequents"][0]
        n = pair_count[(min(a, c), max(a, c))]
        assert rule["support"] == pytest.approx(n / len(sets))
        assert rule["confidence"] == pytest.approx(n / count[a])
        assert rule["lift"] == pytest.approx((n / count[a]) / (count[c] / len(sets)))
    whole_milk = count["whole milk"] / len(sets)
    assert whole_milk == pytest.approx(0.2555, abs=1e-4)  # arules::Groceries

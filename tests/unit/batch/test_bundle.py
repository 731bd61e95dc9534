"""The served lists: ranked block by block on several threads, they equal one pass over every customer."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from batch import bundle
from batch.interactions import Interactions
from batch.models import HybridRecommender, TifuKnnRecommender
from tests.unit.batch.test_models import SHOP_MODELS, _random_shop_lines


@pytest.fixture(scope="module")
def random_shop() -> Interactions:
    return Interactions.from_lines(_random_shop_lines())


def test_lists_ranked_in_blocks_on_threads_equal_one_pass(random_shop: Interactions,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    parts = {name: SHOP_MODELS[name].make().fit(random_shop) for name in ("repeat", "ease", "rules")}
    parts["trend"] = SHOP_MODELS["popularity"].make().fit(random_shop)
    served = HybridRecommender.of(parts, {"repeat": 1.0, "ease": 0.2, "rules": 0.1, "trend": 0.3})
    whole = bundle.top_lists(served, 5)
    monkeypatch.setattr(bundle, "CUSTOMERS_PER_REPORT", 7)
    monkeypatch.setattr(bundle, "TOP_LIST_THREADS", 3)
    said: list[str] = []
    assert bundle.top_lists(served, 5, said.append) == whole
    assert len(whole) == random_shop.shape[0] and len(said) == -(-random_shop.shape[0] // 7)


def test_tifu_neighbours_found_on_threads_equal_a_fresh_search(random_shop: Interactions,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Threads asking for overlapping customers keep each once, and read back what a fresh search finds."""
    from batch.models import tifu

    monkeypatch.setattr(tifu, "NEIGHBOUR_MEMO_ROWS", 25)
    model = TifuKnnRecommender(group_size=2, neighbours=5).fit(random_shop)
    rows = np.arange(random_shop.shape[0])
    asked = [rows[i:i + 12] for i in range(0, len(rows) - 12, 4)]
    found: dict[int, np.ndarray] = {}
    threads = [threading.Thread(target=lambda i=i, chunk=chunk: found.__setitem__(i, model._neighbours(chunk, 5)))
               for i, chunk in enumerate(asked)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for i, chunk in enumerate(asked):
        np.testing.assert_array_equal(np.sort(found[i], axis=1), np.sort(model._nearest(chunk, 5), axis=1))
    assert model._slot is not None and model._n_kept == 25 and (model._slot >= 0).sum() == 25
    kept = np.flatnonzero(model._slot >= 0)
    np.testing.assert_array_equal(np.sort(model._kept[model._slot[kept]], axis=1),
                                  np.sort(model._nearest(kept, 5), axis=1))

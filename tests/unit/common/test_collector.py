from __future__ import annotations

import gc

from common.collector import THRESHOLDS, settle


def test_settling_freezes_what_exists_and_raises_the_thresholds() -> None:
    before, frozen = gc.get_threshold(), gc.get_freeze_count()
    made_before: list[list[int]] = [[] for _ in range(10)]  # containers the collector tracks
    try:
        settle()
        assert gc.get_threshold() == THRESHOLDS
        assert gc.get_freeze_count() >= frozen + len(made_before)
    finally:
        # What it froze stays frozen, as after the API's lifespan under TestClient: thawing it would hand garbage
        # that earlier tests left (an unclosed socket) to a later test's collection, failing that test.
        gc.set_threshold(*before)

from __future__ import annotations

import math

from ui.shared import when


def test_when_formats_times_and_says_dash_for_missing_ones() -> None:
    assert when(1_700_000_000) == "2023-11-14 22:13"
    assert when(None) == when(0) == when(math.nan) == "-"

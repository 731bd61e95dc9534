from __future__ import annotations

import math

from ui.shared import api_path, when


def test_when_formats_times_and_says_dash_for_missing_ones() -> None:
    assert when(1_700_000_000) == "2023-11-14 22:13"
    assert when(None) == when(0) == when(math.nan) == "-"


def test_a_typed_id_stays_one_quoted_path_segment() -> None:
    assert api_path("customers", "c-1") == "/customers/c-1"
    assert api_path("customers", "../admin/refit?x=1#y", "exposures") == (
        "/customers/..%2Fadmin%2Frefit%3Fx%3D1%23y/exposures")

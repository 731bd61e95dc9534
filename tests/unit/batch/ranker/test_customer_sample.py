from __future__ import annotations

import pandas as pd

from batch.ranker.stage import customer_sample


def test_a_window_fits_on_whole_histories_of_a_seeded_sample_of_customers() -> None:
    lines = pd.DataFrame({"customer_id": pd.Series([f"c{i % 10}" for i in range(100)], dtype="string[pyarrow]"),
                          "product_id": [f"p{i}" for i in range(100)]})
    sample = customer_sample(lines, 4)
    assert sample["customer_id"].nunique() == 4
    assert (sample.groupby("customer_id").size() == 10).all()  # every line of a sampled customer
    assert sample.equals(customer_sample(lines, 4))  # seeded
    assert customer_sample(lines, 10) is lines and customer_sample(lines, None) is lines

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from batch.evaluation.split import Holdout


def test_a_sample_keeps_whole_customers_in_their_order() -> None:
    rows = np.arange(10, 20)
    relevant = sp.csr_matrix(np.eye(10, 4, dtype=np.float32) + np.eye(10, 4, k=-4, dtype=np.float32))
    holdout = Holdout(rows, relevant, np.arange(10) + 1, exclude_seen=True, eligible=10)
    sample = holdout.sample(4)
    picked = sample.rows - 10
    assert len(picked) == 4 and list(picked) == sorted(picked)
    assert (sample.relevant.toarray() == relevant.toarray()[picked]).all()
    assert list(sample.n_relevant) == list(picked + 1) and sample.exclude_seen and sample.eligible == 10
    assert holdout.sample(10) is holdout and list(holdout.sample(4).rows) == list(sample.rows)  # seeded

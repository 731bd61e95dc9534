"""A guarded Thompson-sampling split: at each interval the arms' shares of new customers become each arm's
posterior probability of converting best (Beta(1 + converted, 1 + not converted) per arm, estimated by
sampling), then every arm is lifted to at least `min_share` and the shares rounded to whole percents. Between
re-weights the shares stay put, and a customer keeps the arm they were first given.

An adaptive split biases the plain difference of means (an arm that did well early gets more of the later
customers, whose conversion may differ), so the summary also reports each arm's inverse-probability-weighted
(Horvitz-Thompson) mean: every customer's outcome divided by the share their arm had when they were assigned,
summed, over all customers. It is unbiased for what that arm would give if shown to everyone."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from common.assignment import BUCKETS

Array = npt.NDArray[np.float64]

DRAWS = 20_000


def probability_best(converted: Sequence[float], exposed: Sequence[float], rng: np.random.Generator,
                     draws: int = DRAWS) -> Array:
    """Each arm's posterior probability of the highest conversion, from `draws` joint samples."""
    samples = np.stack([rng.beta(1 + c, 1 + max(n - c, 0), draws) for c, n in zip(converted, exposed, strict=True)])
    wins = np.bincount(np.argmax(samples, axis=0), minlength=len(converted))
    return np.asarray(wins / draws, dtype=np.float64)


def guarded_shares(best: Array, min_share: float) -> list[int]:
    """Whole percents adding up to 100: each arm `min_share` plus its part of the rest by `best`, rounded by the
    largest remainders (so no arm falls below the floor)."""
    arms = len(best)
    if not 0 <= min_share * arms <= 1:
        raise ValueError(f"a minimum share of {min_share} cannot hold for {arms} arms")
    floor = int(np.ceil(min_share * BUCKETS - 1e-9))
    exact = floor + (BUCKETS - floor * arms) * np.asarray(best, dtype=np.float64) / max(float(np.sum(best)), 1e-12)
    shares = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - shares), kind="stable")[:BUCKETS - int(shares.sum())]:
        shares[i] += 1
    return [int(s) for s in shares]


def thompson_shares(converted: Sequence[float], exposed: Sequence[float], min_share: float,
                    rng: np.random.Generator) -> list[int]:
    return guarded_shares(probability_best(converted, exposed, rng), min_share)


def expected_shares(history: Sequence[tuple[Sequence[int], int]], customers: int) -> list[float]:
    """Each arm's expected share of the customers so far under a changing split, for the sample-ratio check:
    `history` holds each split (percents) with the customers assigned before it took effect; the customers
    between one split and the next were dealt by the first."""
    if customers == 0 or not history:
        return [share / BUCKETS for share in history[-1][0]] if history else []
    expected = np.zeros(len(history[0][0]))
    for (shares, since), (_, until) in zip(history, [*history[1:], ([], customers)], strict=True):
        expected += max(until - since, 0) * np.asarray(shares, dtype=np.float64) / BUCKETS
    return [float(e) for e in expected / max(float(expected.sum()), 1e-12)]


def ipw_mean(weighted_total: Array | float, customers: Array | float) -> Array:
    """Horvitz-Thompson: the sum over an arm's customers of outcome / propensity, over all customers of every
    arm; 0 before anyone is assigned."""
    n = np.asarray(customers, dtype=np.float64)
    return np.asarray(np.divide(np.asarray(weighted_total, dtype=np.float64), n, out=np.zeros_like(n),
                                where=n > 0), dtype=np.float64)

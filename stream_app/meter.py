"""Live counters the worker publishes: events/s, lag, event-to-Redis freshness."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping


class RateMeter:
    """Events per second over a sliding window of recent batches."""

    def __init__(self, window_s: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._window_s = window_s
        self._clock = clock
        self._samples: list[tuple[float, int]] = []

    def add(self, count: int) -> None:
        now = self._clock()
        self._samples.append((now, count))
        self._samples = [(t, n) for t, n in self._samples if now - t <= self._window_s]

    @property
    def rate(self) -> float:
        if len(self._samples) < 2:
            return 0.0
        span = self._samples[-1][0] - self._samples[0][0]
        counted = sum(n for _, n in self._samples[1:])
        return counted / span if span > 0 else 0.0


def lag(highwaters: Mapping[object, int | None], positions: Mapping[object, int]) -> int | None:
    """Records not yet consumed, summed over partitions; None when a partition's end is unknown."""
    total = 0
    for tp, position in positions.items():
        end = highwaters.get(tp)
        if end is None:
            return None
        total += max(0, end - position - 1)
    return total


def freshness_summary(ages_ms: list[float]) -> dict[str, float]:
    if not ages_ms:
        return {}
    ordered = sorted(ages_ms)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return {"freshness_p50_ms": round(statistics.median(ordered), 1), "freshness_p99_ms": round(p99, 1)}

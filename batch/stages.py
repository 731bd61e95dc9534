"""Wall time and peak memory of each stage of a batch run."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

SAMPLE_EVERY_S = 0.02


def rss_bytes() -> int:
    """Resident set size of this process, from /proc (0 where /proc is absent)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE")


@dataclass
class StageRecord:
    name: str
    seconds: float
    peak_rss_mib: float


@dataclass
class Stages:
    """`with stages.stage("fit ease"): ...` records the stage; a sampler thread tracks the peak RSS within it."""

    report: Callable[[str], None] = lambda _message: None
    records: list[StageRecord] = field(default_factory=list)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        peak = [rss_bytes()]
        done = threading.Event()

        def sample() -> None:
            while not done.wait(SAMPLE_EVERY_S):
                peak[0] = max(peak[0], rss_bytes())

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.perf_counter()
        try:
            yield
        finally:
            done.set()
            sampler.join()
            peak[0] = max(peak[0], rss_bytes())
            record = StageRecord(name, time.perf_counter() - started, peak[0] / 2**20)
            self.records.append(record)
            self.report(f"{name}: {record.seconds:.2f} s, peak RSS {record.peak_rss_mib:.0f} MiB")

    def total_seconds(self) -> float:
        return sum(r.seconds for r in self.records)

    def peak_rss_mib(self) -> float:
        return max((r.peak_rss_mib for r in self.records), default=rss_bytes() / 2**20)

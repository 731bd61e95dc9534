"""Simulated visits for the replayed A/B experiment: before each order is replayed, its customer asks for
recommendations through the API's own code path, at the order's event time, so the exposure precedes the
real purchases that follow. The visits belong to their own experiment, `replay-<first replayed day>`: their clock
is the history's event time, never mixed with live requests."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field

from api.schemas import AbSummary
from api.services.ab import UnknownExperiment, read_summary
from api.services.recommend import serve
from api.state import ApiState, close_state, create_state
from common.assignment import replay_experiment
from common.events import PurchaseEvent
from common.settings import Settings

CONNECT_TIMEOUT_S = 30.0


class VisitError(Exception):
    """The simulated visits cannot run (no broker for exposures, no published model)."""


@dataclass
class Visits:
    settings: Settings
    k: int = 10
    state: ApiState | None = None
    served: Counter[str] = field(default_factory=Counter)
    experiment: str | None = None  # default: named after the first replayed order's day

    async def __aenter__(self) -> Visits:
        self.state = create_state(self.settings)
        await self.state.exposures.start()
        if not await self.state.exposures.connected(CONNECT_TIMEOUT_S):
            raise VisitError(f"no broker at {self.settings.bootstrap_servers} for the exposures topic")
        if await self.state.models.get() is None:
            raise VisitError("no model is published: run `recsys batch run` first")
        if self.experiment is not None and await self.state.redis.hexists(self.state.keys.ab_ended(), self.experiment):
            raise VisitError(f"experiment {self.experiment} has ended and takes no more exposures: name another "
                             "(--experiment)")
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self.state is not None:
            await self.state.exposures.stop()
            await close_state(self.state)

    async def before_order(self, event: PurchaseEvent) -> None:
        assert self.state is not None
        self.experiment = self.experiment or replay_experiment(event.event_time.date())
        response = await serve(self.state, event.customer_id, self.k, at=event.event_time, experiment=self.experiment)
        self.served[response["group"]] += 1
        await self.state.exposures.flush()  # on the topic before the order's purchases are sent

    @property
    def lost(self) -> int:
        return self.state.exposures.lost if self.state is not None else 0

    async def results(self, sent: int, wait_s: float) -> AbSummary:
        """The experiment as the stream has counted it, once it has caught up with what was sent (or after
        `wait_s`)."""
        assert self.state is not None
        keys = self.state.keys
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            stats = await self.state.redis.hmget(keys.stream_stats(), "processed", "duplicates", "late")
            if sum(int(v or 0) for v in stats) >= sent:
                break
            await asyncio.sleep(0.5)
        try:
            return await read_summary(self.state, self.experiment)
        except UnknownExperiment as exc:
            raise VisitError(f"the stream has applied no exposure of {self.experiment} (is `recsys stream` "
                             "running?)") from exc

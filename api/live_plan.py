"""The running experiment as `/recommend` last read it: its plan is re-read in every request's own round trip (a
small string) and parsed only when it changed."""

from __future__ import annotations

from dataclasses import dataclass, field

from experiments.plan import Plan


@dataclass
class LivePlan:
    default: Plan  # the settings' experiment, served while no managed one runs
    raw: bytes | None = None
    plan: Plan = field(init=False)

    def __post_init__(self) -> None:
        self.plan = self.default

    def observe(self, raw: bytes | None) -> Plan:
        if raw != self.raw:
            self.plan = self.default if raw is None else Plan.model_validate_json(raw)
            self.raw = raw
        return self.plan

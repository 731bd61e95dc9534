"""An experiment as an object: its arms (what each serves), the split of customers between them, its salt and its
start. Started with `recsys ab start`, kept in Redis (`KeyLayout.ab_plans`); the one running is also the live
plan `/recommend` reads on every request (`KeyLayout.ab_live_plan`). Without one, the experiment named by
`RECSYS_AB_EXPERIMENT` runs as the two-arm default: best-sellers against the current model. Light on purpose (the
API's hot path imports it): no statistics."""

from __future__ import annotations

import math
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from common.assignment import BUCKETS, bucket
from common.events import EXPERIMENT_PATTERN, ArmName, experiment_name
from common.settings import Settings

CURRENT = "current"  # a model arm that follows whatever version is current
ArmStrategy = Literal["best_sellers", "model"]
ExperimentName = Annotated[str, Field(pattern=EXPERIMENT_PATTERN), AfterValidator(experiment_name)]
MAX_ARMS = 8
VERSION_PATTERN = r"^[A-Za-z0-9_.\-]{1,64}$"


class Arm(BaseModel):
    """What one arm serves: the best-sellers, or a model version's lists (`current`: the one current at the time
    of each request)."""

    model_config = ConfigDict(frozen=True)

    name: ArmName
    strategy: ArmStrategy
    version: str | None = Field(default=None, pattern=VERSION_PATTERN,
                                description="The model version a model arm serves; `current` follows the pointer.")

    @model_validator(mode="after")
    def _version_only_for_models(self) -> Arm:
        if (self.strategy == "model") != (self.version is not None):
            raise ValueError("a model arm names a version (model:current or model:<version>); best_sellers none")
        return self

    @classmethod
    def parse(cls, text: str) -> Arm:
        """`control=best_sellers`, `current=model:current` or `challenger=model:20261205T020000Z`."""
        match = re.fullmatch(r"([^=]+)=(best_sellers|model:(.+))", text.strip())
        if match is None:
            raise ValueError(f"{text!r}: an arm is NAME=best_sellers or NAME=model:VERSION (VERSION may be "
                             f"'current')")
        name, what, version = match.groups()
        return cls(name=name, strategy="best_sellers" if what == "best_sellers" else "model", version=version)

    @property
    def label(self) -> str:
        return "best_sellers" if self.strategy == "best_sellers" else f"model:{self.version}"

    @property
    def pinned_version(self) -> str | None:
        """The version this arm serves whatever is current, if any (what retention must keep)."""
        return self.version if self.version not in (None, CURRENT) else None


class Bandit(BaseModel):
    """A guarded Thompson-sampling split (`experiments.bandit`): the plan's split is re-weighted every
    `interval_s` seconds of the experiment's clock, no arm below `min_share`; `interval` is the one the split is
    for. A customer keeps the arm they were first given."""

    model_config = ConfigDict(frozen=True)

    interval_s: float = Field(default=3600.0, ge=1.0)
    min_share: float = Field(default=0.1, ge=0.0, le=0.5)
    interval: int = Field(default=0, ge=0)


class Promotion(BaseModel):
    arm: str
    version: str
    at: float


class Plan(BaseModel):
    """The first arm is the control every other arm is compared with. `split` gives each arm's percent of
    customers, in the arms' order."""

    model_config = ConfigDict(frozen=True)

    name: ExperimentName
    arms: list[Arm] = Field(min_length=2, max_length=MAX_ARMS)
    split: list[int]
    salt: str = Field(min_length=1, max_length=128)
    started_at: float = Field(description="Epoch seconds (wall clock) when it was started.")
    managed: bool = Field(default=True, description="Started with `recsys ab start` (else the settings' default).")
    promoted: Promotion | None = None
    bandit: Bandit | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Plan:
        names = [arm.name for arm in self.arms]
        if len(set(names)) != len(names):
            raise ValueError(f"arm names must differ: {names}")
        if len(self.split) != len(self.arms):
            raise ValueError(f"the split gives {len(self.split)} shares for {len(self.arms)} arms")
        if sum(self.split) != BUCKETS or min(self.split) < 0:
            raise ValueError(f"the split's percents must be >= 0 and add up to {BUCKETS}, not {sum(self.split)}")
        if self.bandit is not None:
            floor = math.ceil(self.bandit.min_share * BUCKETS - 1e-9)
            if floor * len(self.arms) > BUCKETS or min(self.split) < floor:
                raise ValueError(f"a bandit's arms each need at least {floor}% (its minimum share), in a split "
                                 f"that adds up to {BUCKETS}")
        return self

    @property
    def control(self) -> Arm:
        return self.arms[0]

    @property
    def arm_names(self) -> list[str]:
        return [arm.name for arm in self.arms]

    def arm(self, name: str) -> Arm:
        for arm in self.arms:
            if arm.name == name:
                return arm
        raise KeyError(f"experiment {self.name!r} has no arm {name!r}; its arms: {', '.join(self.arm_names)}")

    def arm_of(self, customer_id: str) -> Arm:
        """Sticky: the customer's bucket (0..99 by hash of the salt and their id) picks the arm. The buckets are
        dealt from the last arm backwards, so the two-arm default keeps the assignment it always had (treatment:
        the buckets below its percent). Under a bandit the bucket is drawn again each interval (the salt names
        it), so new customers follow the interval's split; one already assigned keeps their arm (the caller
        knows it from the stream)."""
        salt = self.salt if self.bandit is None else f"{self.salt}:{self.bandit.interval}"
        position = bucket(salt, customer_id)
        edge = 0
        for arm, share in zip(reversed(self.arms), reversed(self.split), strict=True):
            edge += share
            if position < edge:
                return arm
        return self.arms[0]

    def share(self, arm: Arm) -> float:
        """The arm's share of new customers now (its propensity)."""
        return self.split[self.arms.index(arm)] / BUCKETS

    def interval_at(self, now: float) -> int:
        """The bandit's interval at wall time `now` (0 without a bandit)."""
        return 0 if self.bandit is None else int(max(0.0, now - self.started_at) // self.bandit.interval_s)

    def pinned_versions(self) -> set[str]:
        return {v for arm in self.arms if (v := arm.pinned_version) is not None}


def even_split(arms: int) -> list[int]:
    """Percents as even as whole numbers allow, the remainder to the first arms (3 arms: 34, 33, 33)."""
    share, extra = divmod(BUCKETS, arms)
    return [share + (1 if i < extra else 0) for i in range(arms)]


def default_plan(settings: Settings) -> Plan:
    """The experiment of the settings: best-sellers (control) against the current model (treatment)."""
    treatment = settings.ab_treatment_percent
    return Plan(name=settings.ab_experiment, salt=settings.ab_salt, started_at=0.0, managed=False,
                arms=[Arm(name="control", strategy="best_sellers"), Arm(name="treatment", strategy="model",
                                                                         version=CURRENT)],
                split=[BUCKETS - treatment, treatment])


DEFAULT_ARMS = ("control", "treatment")  # of an experiment that has no plan (the settings' one, a replay's)


def arms_of(raw_plan: bytes | str | None) -> tuple[str, ...]:
    """The arm names of a stored plan (`KeyLayout.ab_plans`), or the default two when there is none."""
    return DEFAULT_ARMS if raw_plan is None else tuple(Plan.model_validate_json(raw_plan).arm_names)

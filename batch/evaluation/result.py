"""What an evaluation was asked to do (`EvaluationOptions`) and what it decided (`Evaluation`): the table, the
settings and weights chosen on validation, the ranker, the cold start. Beside the evaluation code, so the job
(`batch.pipeline`), the reports and the Spark engine depend on these types and not on each other."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from batch.evaluation.last import LastEvaluation
from batch.evaluation.tuning import Tuned
from batch.memory import DataShape, MemoryPlan
from batch.ranker.stage import RankerOutcome


@dataclass
class EvaluationOptions:
    split_date: pd.Timestamp | None = None
    validation_date: pd.Timestamp | None = None
    test_days: int = 30
    tune: bool = False
    params_file: Path | None = None
    export_recs: Path | None = None
    case_study: bool = True
    memory_gb: float = 8.0  # RECSYS_BATCH_MEMORY_GB
    ease_max_items: int = 20_000  # RECSYS_BATCH_EASE_MAX_ITEMS
    eval_max_customers: int | None = 20_000  # RECSYS_BATCH_EVAL_MAX_CUSTOMERS
    ranker_windows: int = 2  # RECSYS_BATCH_RANKER_WINDOWS: labelled windows the ranker trains on
    ranker_fit_max_customers: int | None = 50_000  # RECSYS_BATCH_RANKER_FIT_MAX_CUSTOMERS: a window's fit sample
    ranker_max_customers: int | None = 5_000  # RECSYS_BATCH_RANKER_MAX_CUSTOMERS: labelled customers per window
    ablations: bool = True  # the ranker trained again without each group of features (`evaluate`; not nightly)
    reuse: LastEvaluation | None = None  # a night that does not evaluate: this evaluation's settings and report

    def plan(self, lines: pd.DataFrame) -> MemoryPlan:
        return MemoryPlan.for_data(DataShape.of(lines), self.memory_gb, self.ease_max_items)


@dataclass
class Evaluation:
    split: str
    validation_split: str
    end: str
    table: dict[str, dict[str, dict[str, float]]]
    tuned: Tuned
    case_study: dict[str, Any] | None
    coverage: dict[str, dict[str, float]] = field(default_factory=dict)
    plan: dict[str, Any] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    cold_start: dict[str, Any] | None = None  # cohort vs global best-sellers (batch/cohorts.py)
    ranker: RankerOutcome = field(default_factory=RankerOutcome)
    evaluated_in: str | None = None  # read back: the version whose run evaluated (a night that refits)

    @classmethod
    def read_back(cls, last: LastEvaluation) -> Evaluation:
        """The last evaluation as its run reported it, with the settings it chose."""
        s = last.summary
        return cls(split=s["split"], validation_split=s["validation_split"], end=s["end"], table=s["table"],
                   tuned=last.tuned, case_study=s.get("case_study"), coverage=s.get("coverage", {}),
                   plan=s.get("memory_plan", {}), cold_start=s.get("cold_start"),
                   ranker=RankerOutcome(reported=s["ranker"]), evaluated_in=last.version)

    def summary(self) -> dict[str, Any]:
        return {"split": self.split, "validation_split": self.validation_split, "end": self.end,
                "served": self.served, "table": self.table, "coverage": self.coverage, "memory_plan": self.plan,
                "tuned": self.tuned.to_dict(), "ranker": self.ranker.summary(), "case_study": self.case_study,
                "cold_start": self.cold_start} | ({"evaluated_in": self.evaluated_in} if self.evaluated_in else {})

    @property
    def served(self) -> str:
        """The table row that is published: the ranker when it could be trained, otherwise the blend."""
        return "ranker" if self.ranker.usable else "hybrid"

    @property
    def serve_cohorts(self) -> bool:
        return bool(self.cold_start and self.cold_start["decision"]["serve_cohorts"])

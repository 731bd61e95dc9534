"""A/B assignment and naming: which arm a customer is in, and the replay's experiment names. Light on purpose:
the API's hot path and the settings import it, so it pulls in no statistics (`experiments.statistics` holds those)."""

from __future__ import annotations

import hashlib
from datetime import date
from typing import Literal

Group = Literal["control", "treatment"]
BUCKETS = 100


def bucket(salt: str, customer_id: str) -> int:
    """0..99, the same for a customer for as long as the salt (the experiment) stays the same."""
    digest = hashlib.blake2b(f"{salt}\x1f{customer_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS


def group_of(salt: str, customer_id: str, treatment_percent: int) -> Group:
    return "treatment" if bucket(salt, customer_id) < treatment_percent else "control"


REPLAY_PREFIX = "replay-"


def replay_experiment(first_event: date) -> str:
    """The experiment a replay's simulated visits belong to, named after the first replayed day, so replayed
    history (event time) never mixes with live requests (wall time) in one experiment."""
    return f"{REPLAY_PREFIX}{first_event:%Y-%m-%d}"


def is_replayed(experiment: str) -> bool:
    return experiment.startswith(REPLAY_PREFIX)

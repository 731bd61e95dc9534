"""The exposure sender's state, for `/ready` and `/metrics`."""

from __future__ import annotations

from api.schemas import ExposureSender
from api.state import ApiState


def sender_state(state: ApiState) -> ExposureSender:
    exposures = state.exposures
    return ExposureSender(running=exposures.running, connected=exposures.is_connected, queued=exposures.queued,
                          sent=exposures.sent, lost=exposures.lost, errors=exposures.errors,
                          last_error=exposures.last_error)

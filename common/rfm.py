"""A customer's RFM state as the stream keeps it in Redis (customer_rfm hash)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class RfmState:
    first_ts: int
    last_ts: int
    orders: int
    lines: int
    units: int
    monetary_cents: int

    @classmethod
    def from_hash(cls, fields: Mapping[str, str]) -> RfmState:
        return cls(
            first_ts=int(fields["first_ts"]), last_ts=int(fields["last_ts"]), orders=int(fields.get("orders", 0)),
            lines=int(fields.get("lines", 0)), units=int(fields.get("units", 0)),
            monetary_cents=int(fields.get("monetary_cents", 0)),
        )

    @property
    def monetary(self) -> float:
        return self.monetary_cents / 100

    def recency_days(self, as_of_ts: int) -> float:
        """Days from the last purchase to `as_of_ts` (the stream's latest event time, never before last_ts)."""
        return max(0, as_of_ts - self.last_ts) / 86400

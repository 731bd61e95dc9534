"""Helpers for stream tests: a synthetic history, replayed, waited for, and Redis compared with pandas."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import cast

import pandas as pd

from common.data import load_history, load_mapping
from common.data.synthetic import SyntheticSpec, write
from common.keys import KeyLayout
from common.redis_clients import SyncRedis
from common.settings import Settings
from producers.replay import Pace, replay, to_events
from stream_app.state import to_cents

RECSYS = str(Path(sys.executable).parent / "recsys")


def history(folder: Path, customers: int = 1200, lines: int = 24_000, seed: int = 11) -> pd.DataFrame:
    write(SyntheticSpec(customers=customers, products=300, lines=lines, seed=seed), folder)
    return load_history(folder, load_mapping("case_study")).lines


def send(settings: Settings, lines: pd.DataFrame, pace: Pace | None = None) -> int:
    return asyncio.run(replay(settings, to_events(lines), pace or Pace())).sent


def stats(client: SyncRedis, keys: KeyLayout) -> dict[str, int]:
    raw = client.hgetall(keys.stream_stats())
    return {k: int(v) for k, v in raw.items() if k in ("processed", "duplicates", "late", "dead_lettered")}


def wait_for(client: SyncRedis, keys: KeyLayout, timeout_s: float = 120, **expected: int) -> dict[str, int]:
    deadline = time.monotonic() + timeout_s
    current: dict[str, int] = {}
    while time.monotonic() < deadline:
        current = stats(client, keys)
        if all(current.get(k, 0) >= v for k, v in expected.items()):
            return current
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {expected}; stream stats are {current}")


def truth(lines: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """Per-customer RFM fields and per-(customer, product) units, computed directly with pandas."""
    frame = lines.assign(
        ts=(lines["event_time"] - pd.Timestamp("1970-01-01")) // pd.Timedelta(seconds=1),
        cents=lines["amount"].map(to_cents),
    )
    per_customer = frame.groupby("customer_id").agg(
        orders=("order_id", "nunique"), lines=("order_id", "size"), units=("units", "sum"),
        monetary_cents=("cents", "sum"), first_ts=("ts", "min"), last_ts=("ts", "max"),
    )
    units = frame.groupby(["customer_id", "product_id"])["units"].sum()
    return per_customer.astype("int64"), units.astype("int64")


def differences(client: SyncRedis, keys: KeyLayout, lines: pd.DataFrame) -> list[str]:
    """Every field where Redis disagrees with the pandas ground truth (empty list = identical)."""
    per_customer, units = truth(lines)
    customers = list(per_customer.index)
    pipe = client.pipeline(transaction=False)
    for cid in customers:
        pipe.hgetall(keys.customer_rfm(cid))
        pipe.hgetall(keys.customer_product_units(cid))
    replies = pipe.execute()
    diffs = []
    for i, cid in enumerate(customers):
        rfm, product_units = replies[2 * i], replies[2 * i + 1]
        for field, expected in per_customer.loc[cid].items():
            got = int(rfm.get(field, -1))
            if got != expected:
                diffs.append(f"{cid} {field}: redis {got} != truth {expected}")
        expected_units = units.loc[cid].to_dict()
        got_units = {p: int(u) for p, u in product_units.items()}
        if got_units != expected_units:
            diffs.append(f"{cid} product units differ")
    n_customers = client.zcard(keys.customers_index())
    if n_customers != len(customers):
        diffs.append(f"customers index has {n_customers}, truth {len(customers)}")
    want = {str(p): int(u) for p, u in lines.groupby("product_id")["units"].sum().items()}
    scored = cast(list[tuple[str, float]], client.zrange(keys.product_popularity(), 0, -1, withscores=True))
    if {str(p): int(u) for p, u in scored} != want:
        diffs.append("product popularity differs")
    return diffs

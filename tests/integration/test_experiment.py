"""The replayed experiment end to end, as a user runs it: publish a model, run the stream worker, replay the
period after the model with simulated visits, and compare the conversions per group with a direct computation
from the exposures on the topic and the purchases replayed."""

from __future__ import annotations

import asyncio
import subprocess
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
import redis

from batch.evaluation.result import EvaluationOptions
from batch.pipeline import run
from batch.stages import Stages
from common.assignment import replay_experiment
from common.data import load_history, load_mapping
from common.data.load import LoadedData
from producers.replay import to_events
from stack.scratch import settings_env, start_worker, stop_worker
from tests.integration.abkit import expected_conversions, read_exposures
from tests.integration.conftest import Isolated
from tests.integration.streamkit import RECSYS, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


def test_replayed_experiment_counts_what_a_direct_computation_gives(isolated: Isolated, tmp_path: Path) -> None:
    settings = isolated.settings
    folder = tmp_path / "shop"
    subprocess.run([RECSYS, "data", "generate", "--customers", "300", "--products", "120", "--lines", "8000",
                    "--seed", "8", "--out", str(folder)], check=True, capture_output=True)
    loaded = load_history(folder, load_mapping("case_study"))
    split = loaded.lines["event_time"].max() - pd.Timedelta(days=45)
    before = loaded.lines[loaded.lines["event_time"] < split]
    after = loaded.lines[loaded.lines["event_time"] >= split]
    with redis.Redis.from_url(settings.redis_url) as client:  # the job uses the client it is given, and leaves it open
        run(LoadedData(before, loaded.customers, loaded.report), EvaluationOptions(case_study=False),
            tmp_path / "art", client, isolated.keys, Stages(), progress=lambda _m: None)

    worker = start_worker(settings, tmp_path / "worker.log")
    try:
        replay = subprocess.run(
            [RECSYS, "replay", "--data", str(folder), "--from", str(split), "--simulate-visits", "--visit-k", "8",
             "--wait", "120"],
            env=settings_env(settings), capture_output=True, text=True, timeout=600, cwd=tmp_path)
        assert replay.returncode == 0, replay.stderr
        wait_for(isolated.redis, isolated.keys, processed=len(after))
    finally:
        stop_worker(worker)

    # One visit per replayed order; logged when the shop knew the customer at that moment (purchases or a
    # profile): every customer of the model's period is known, a first-time buyer only once their profile or
    # an earlier purchase had reached Redis.
    orders = after["order_id"].nunique()
    known = after[after["customer_id"].isin(before["customer_id"])]["order_id"].nunique()
    exposures = asyncio.run(read_exposures(settings, lambda found: len(found) >= orders, polls=25))  # all of them
    assert known <= len(exposures) <= orders
    window = timedelta(days=settings.ab_attribution_days)
    expected = expected_conversions(exposures, list(to_events(after)), window)
    assert expected["treatment"]["converted_items"] > 0
    experiment = replay_experiment(after["event_time"].min().date())
    assert {e.experiment for e in exposures} == {experiment}  # the replay's own experiment, not the live one
    assert isolated.redis.zrange(isolated.keys.ab_experiments(), 0, -1) == [experiment]
    for group in ("control", "treatment"):
        counters = isolated.redis.hgetall(isolated.keys.ab_group_counters(experiment, group))
        converted = int(counters.get("converted_customers", 0))
        assert {"converted_items": int(counters.get("converted_items", 0)),
                "revenue_cents": int(counters.get("revenue_cents", 0)),
                "revenue_sq_cents2": int(float(counters.get("revenue_sq_cents2", 0))),
                "customers": converted} == expected[group]
        assert int(counters["exposures"]) == sum(e.group == group for e in exposures)
    assert f"A/B experiment {experiment}" in replay.stdout and "not the effect of showing them" in replay.stdout
    assert "always-valid 95% interval" in replay.stdout and "fixed-horizon z-test (valid only for one look" in (
        replay.stdout)

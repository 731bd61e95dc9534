"""A guarded bandit end to end on the real stack: started through the API with a two-second interval, the
challenger's customers convert, the next request after the interval re-weights the split (Thompson sampling,
the floor kept), customers keep the arm they were given, new ones follow the new split, and the summary's
inverse-probability-weighted conversion equals the hand computation from the propensities served."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.main import create_app
from batch.publish import publish
from stack.scratch import start_worker, stop_worker
from tests.integration.abkit import KEY, TEST_KEY, bought_first_shown, model_bundle
from tests.integration.conftest import ON_SINGLE_AND_CLUSTER, Isolated
from tests.integration.streamkit import send

pytestmark = pytest.mark.integration
CUSTOMERS = [f"c{i}" for i in range(120)]
LATER = [f"c{i}" for i in range(120, 240)]


def _served(api: TestClient, customers: list[str]) -> dict[str, dict[str, Any]]:
    return {c: api.get("/recommend", params={"customer_id": c, "k": 3}).json() for c in customers}


def _wait(api: TestClient, done: Any, timeout_s: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    summary: dict[str, Any] = {}
    while time.monotonic() < deadline:
        summary = api.get("/ab/summary", params={"experiment": "bandit"}).json()
        if done(summary):
            return summary
        time.sleep(0.5)
    raise AssertionError(f"timed out; the summary is {summary}")


@ON_SINGLE_AND_CLUSTER
def test_a_guarded_bandit_moves_new_customers_to_the_better_arm(isolated: Isolated, tmp_path: Path) -> None:
    settings = isolated.settings.model_copy(update={"api_key": SecretStr(TEST_KEY)})
    client, keys = isolated.redis, isolated.keys
    publish(client, keys, model_bundle("v-challenger", 10, CUSTOMERS + LATER))
    publish(client, keys, model_bundle("v-current", 0, CUSTOMERS + LATER))
    worker = start_worker(settings, tmp_path / "worker.log")
    try:
        with TestClient(create_app(settings)) as api:
            started = api.post("/ab/experiments", headers=KEY, json={
                "name": "bandit", "arms": ["current=model:current", "challenger=model:v-challenger"],
                "bandit": True, "bandit_interval_minutes": 2 / 60, "min_share": 0.1})
            assert started.status_code == 201, started.text
            first = _served(api, CUSTOMERS)
            challenger = [c for c, r in first.items() if r["group"] == "challenger"]
            assert 40 < len(challenger) < 80  # 50/50 to begin with
            send(settings, bought_first_shown(first, "challenger"))
            _wait(api, lambda s: sum(g["exposed_customers"] for g in s["groups"].values()) == len(CUSTOMERS)
                  and s["groups"]["challenger"]["converted_customers"] == len(challenger))
            time.sleep(2.5)  # the interval passes; the next request re-weighs in the background
            api.get("/recommend", params={"customer_id": CUSTOMERS[0], "k": 3})
            deadline = time.monotonic() + 30
            while json.loads(client.get(keys.ab_live_plan()) or "{}").get("bandit", {}).get("interval", 0) < 1:
                assert time.monotonic() < deadline, "no re-weighting"
                time.sleep(0.2)
            live = json.loads(client.get(keys.ab_live_plan()) or "{}")
            assert live["split"] == [10, 90]  # the challenger is surely better; the floor keeps 10% on current

            again = _served(api, CUSTOMERS)
            assert all(again[c]["group"] == first[c]["group"] for c in CUSTOMERS)  # assigned customers stay
            later = _served(api, LATER)
            share = sum(r["group"] == "challenger" for r in later.values()) / len(LATER)
            assert 0.75 < share < 0.99

            everyone = len(CUSTOMERS) + len(LATER)
            summary = _wait(api, lambda s: sum(g["exposed_customers"] for g in s["groups"].values()) == everyone)
            bandit = summary["bandit"]
            history = bandit["history"]  # each interval that passed while the test ran re-weighs once
            assert history[0]["shares"] == {"current": 50, "challenger": 50} and len(history) >= 2
            assert all(h["shares"] == {"current": 10, "challenger": 90} for h in history[1:])
            assert [h["interval"] for h in history] == sorted({h["interval"] for h in history})
            # each converted challenger customer was assigned at 50%: weight 2, over every exposed customer
            assert bandit["ipw_conversion"]["challenger"] == pytest.approx(2 * len(challenger) / everyone)
            assert bandit["ipw_conversion"]["current"] == 0
            assert not summary["sample_ratio"]["mismatch"]  # expected: each split for the customers it dealt
            assert "biases the plain per-arm means" in bandit["note"]
            stopped = api.post("/ab/experiments/bandit/stop", headers=KEY).json()
            assert stopped["summary"]["bandit"]["history"][-1]["shares"] == {"current": 10, "challenger": 90}
            # the first request after the bandit's plan gave way reads a plan without one, and answers
            after = api.get("/recommend", params={"customer_id": CUSTOMERS[0], "k": 3})
            assert after.status_code == 200 and after.json()["experiment"] == settings.ab_experiment
    finally:
        stop_worker(worker)

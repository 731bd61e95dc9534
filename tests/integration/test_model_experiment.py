"""A model-against-model experiment end to end on the real stack: two published versions, `POST
/ab/experiments` starts three arms, `/recommend` serves each customer their arm's strategy or version (sticky),
the stream worker counts the exposures the API sent through Kafka and the purchases after them, the summary
compares each arm with the control at the corrected alpha, retention keeps the pinned version, promoting the
challenger makes its version current, and stopping returns `/recommend` to the settings' experiment."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.main import create_app
from batch.publish import current_version, prune, publish
from stack.scratch import start_worker, stop_worker
from tests.integration.abkit import KEY, TEST_KEY, bought_first_shown, model_bundle
from tests.integration.conftest import ON_SINGLE_AND_CLUSTER, Isolated
from tests.integration.streamkit import send

pytestmark = pytest.mark.integration

CUSTOMERS = [f"c{i}" for i in range(120)]


@ON_SINGLE_AND_CLUSTER
def test_a_model_against_model_experiment_from_start_to_promotion(isolated: Isolated, tmp_path: Path) -> None:
    settings = isolated.settings.model_copy(update={"api_key": SecretStr(TEST_KEY)})
    client, keys = isolated.redis, isolated.keys
    publish(client, keys, model_bundle("v-challenger", 10, CUSTOMERS))
    publish(client, keys, model_bundle("v-current", 0, CUSTOMERS))  # the newest is current
    arms = ["control=best_sellers", "current=model:current", "challenger=model:v-challenger"]
    worker = start_worker(settings, tmp_path / "worker.log")
    try:
        with TestClient(create_app(settings)) as api:
            refused = api.post("/ab/experiments", json={"name": "mvm", "arms": ["a=model:v-nowhere", "b=best_sellers"]},
                               headers=KEY)
            assert refused.status_code == 409 and "no published model version 'v-nowhere'" in refused.json()["detail"]
            assert api.post("/ab/experiments", json={"name": "mvm", "arms": arms}).status_code == 401
            bad = api.post("/ab/experiments", json={"name": "mvm", "arms": arms, "split": [50, 50, 1]}, headers=KEY)
            assert bad.status_code == 422 and "add up to 100" in bad.json()["detail"]
            started = api.post("/ab/experiments", json={"name": "mvm", "arms": arms}, headers=KEY)
            assert started.status_code == 201, started.text
            assert [(a["name"], a["serves"], a["percent"]) for a in started.json()["arms"]] == [
                ("control", "best_sellers", 34), ("current", "model:current", 33),
                ("challenger", "model:v-challenger", 33)]
            again = api.post("/ab/experiments", json={"name": "other", "arms": arms}, headers=KEY)
            assert again.status_code == 409 and "'mvm' is running" in again.json()["detail"]

            responses = {c: api.get("/recommend", params={"customer_id": c, "k": 3}).json() for c in CUSTOMERS}
            assert {r["experiment"] for r in responses.values()} == {"mvm"}
            served = Counter(r["group"] for r in responses.values())
            assert set(served) == {"control", "current", "challenger"} and min(served.values()) >= 20
            for c, r in responses.items():
                expected = {"control": ("best_sellers", "v-current", "p90"), "current": ("model", "v-current", "p0"),
                            "challenger": ("model", "v-challenger", "p10")}[r["group"]]
                assert (r["strategy"], r["model_version"], r["items"][0]["product_id"]) == expected, c
                assert api.get("/recommend", params={"customer_id": c, "k": 3}).json()["group"] == r["group"]

            # the challenger's customers buy what they were shown; nobody else buys
            purchases = bought_first_shown(responses, "challenger")
            send(settings, purchases)
            summary = _wait_for_summary(api, exposed=2 * len(CUSTOMERS), converted=len(purchases))
            assert {arm: g["exposed_customers"] for arm, g in summary["groups"].items()} == dict(served)
            assert summary["groups"]["challenger"]["converted_customers"] == served["challenger"]
            assert summary["groups"]["control"]["converted_customers"] == 0
            assert list(summary["comparisons"]) == ["current", "challenger"]
            assert summary["comparison_alpha"] == pytest.approx(settings.ab_alpha / 2)
            assert summary["comparisons"]["challenger"]["conversion"]["difference"] == pytest.approx(1.0)
            listed = api.get("/ab/experiments").json()
            assert listed["live"] == "mvm" and listed["experiments"][0]["managed"]

            assert prune(client, keys, keep=1) == []  # v-challenger is older, but an arm serves it

            promoted = api.post("/ab/experiments/mvm/promote", json={"arm": "challenger"}, headers=KEY).json()
            assert (promoted["version"], promoted["previous"]) == ("v-challenger", "v-current")
            assert current_version(client, keys) == "v-challenger"
            on_current = next(c for c, r in responses.items() if r["group"] == "current")
            moved = api.get("/recommend", params={"customer_id": on_current, "k": 3}).json()  # reads the pointer
            assert (moved["model_version"], moved["items"][0]["product_id"]) == ("v-challenger", "p10")
            assert api.post("/ab/experiments/mvm/promote", json={"arm": "control"}, headers=KEY).status_code == 409

            stopped = api.post("/ab/experiments/mvm/stop", headers=KEY).json()
            assert stopped["summary"]["state"] == "ended" and stopped["summary"]["promoted"]["arm"] == "challenger"
            after = api.get("/recommend", params={"customer_id": CUSTOMERS[0], "k": 3}).json()
            assert after["experiment"] == settings.ab_experiment
            assert client.get(keys.ab_live_plan()) is None
    finally:
        stop_worker(worker)


def _wait_for_summary(api: TestClient, exposed: int, converted: int, timeout_s: float = 120) -> dict[str, Any]:
    """The summary once the worker has applied every exposure (two requests per customer) and conversion."""
    deadline = time.monotonic() + timeout_s
    summary: dict[str, Any] = {}
    while time.monotonic() < deadline:
        summary = api.get("/ab/summary", params={"experiment": "mvm"}).json()
        groups = summary["groups"].values()
        if (sum(g["exposures"] for g in groups) >= exposed
                and sum(g["converted_customers"] for g in groups) >= converted):
            return summary
        time.sleep(0.5)
    raise AssertionError(f"timed out; the summary is {summary}")


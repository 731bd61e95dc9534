"""`recsys up` as a user runs it, on a small synthetic history: events replayed -> Redis state equals ground
truth -> a model published -> /recommend answers -> the A/B summary has exposures in both groups -> the UI's
pages load. Then `recsys down`, and nothing it started is left running."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import redis

from common.data import load_history, load_mapping
from common.i18n import LANGUAGES
from common.keys import KeyLayout
from stack.local import port_in_use
from stack.scratch import free_port
from tests.integration.streamkit import RECSYS, differences
from tests.integration.ui.test_browser import CHROMIUM, check_pages

pytestmark = pytest.mark.e2e


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def _ab(env: dict[str, str], cwd: Path, *args: str) -> str:
    done = subprocess.run([RECSYS, "ab", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _model_against_model(env: dict[str, str], cwd: Path, api: str, version: str, customer: str) -> None:
    """`recsys ab start / list / promote / stop` against the demo's API: the customer is served their arm."""
    started = _ab(env, cwd, "start", "demo-mvm", "--arm", "control=best_sellers", "--arm", "current=model:current",
                  "--arm", f"pinned=model:{version}", "--split", "20,40,40")
    assert "demo-mvm started" in started and f"model:{version}" in started
    served = _get(f"{api}/recommend?customer_id={customer}&k=5")
    assert served["experiment"] == "demo-mvm" and served["group"] in ("control", "current", "pinned")
    listed = _ab(env, cwd, "list")
    assert "demo-mvm (live)" in listed and "control=best_sellers (20%)" in listed
    assert f"model {version} (arm pinned of demo-mvm) is current now" in _ab(env, cwd, "promote", "demo-mvm", "pinned")
    stopped = _ab(env, cwd, "stop", "demo-mvm")
    assert "demo-mvm ended" in stopped and "2 comparisons, each at alpha = 0.025 instead of 0.05 (Bonferroni)" in (
        stopped)
    assert _get(f"{api}/recommend?customer_id={customer}&k=5")["experiment"] == "rec-v1"


def test_up_runs_the_whole_system_and_down_stops_it(tmp_path: Path) -> None:
    ports = {name: free_port() for name in ("broker", "redis", "api", "ui")}
    env = os.environ | {
        "RECSYS_BROKER_URL": f"kafka://127.0.0.1:{ports['broker']}",
        "RECSYS_REDIS_URL": f"redis://127.0.0.1:{ports['redis']}/0",
        "RECSYS_API_PORT": str(ports["api"]), "RECSYS_UI_PORT": str(ports["ui"]),
        "RECSYS_API_KEY": "e2e-test-key-" + "e" * 32,
    }
    try:
        up = subprocess.run([RECSYS, "up", "--customers", "250", "--lines", "6000", "--speed", "5000000"],
                            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
        assert up.returncode == 0, up.stdout[-2000:] + up.stderr[-2000:]
        assert f"UI   http://127.0.0.1:{ports['ui']}" in up.stdout and "recsys down" in up.stdout

        lines = load_history(tmp_path / "data" / "synthetic", load_mapping("case_study")).lines
        client = redis.Redis.from_url(env["RECSYS_REDIS_URL"], decode_responses=True)
        keys = KeyLayout("recsys")
        deadline = time.monotonic() + 240
        while int(client.hget(keys.stream_stats(), "processed") or 0) < len(lines):
            assert time.monotonic() < deadline, (tmp_path / ".run" / "logs" / "replay.log").read_text()[-2000:]
            time.sleep(1)
        assert differences(client, keys, lines) == []

        api = f"http://127.0.0.1:{ports['api']}"
        version = client.get(keys.model_current())
        assert version is not None and _get(f"{api}/ready")["model_version"] == version
        known = _get(f"{api}/recommend?customer_id={lines['customer_id'].iloc[0]}&k=5")
        unknown = _get(f"{api}/recommend?customer_id=nobody-at-all&k=5")
        assert len(known["items"]) == 5 and not known["cold_start"]
        assert len(unknown["items"]) == 5 and unknown["cold_start"]
        # Master data flowed: names from the catalogue, profiles in Redis, the file's cleaning report in the card.
        catalogue = load_history(tmp_path / "data" / "synthetic", load_mapping("case_study")).products
        assert catalogue is not None
        names = dict(zip(catalogue["product_id"], catalogue["name"], strict=True))
        assert all(item["name"] == names[item["product_id"]] for item in known["items"] + unknown["items"])
        customer = _get(f"{api}/customers/{lines['customer_id'].iloc[-1]}")
        assert customer["profile"]["region"] and customer["live_segment"]["segment"]
        card = _get(f"{api}/model")
        assert sum(card["source_reports"][0]["cleaning"]["removed"].values()) > 0
        assert _get(f"{api}/segments/{customer['segment']['segment']}")["action"]
        experiments = _get(f"{api}/ab/experiments")["experiments"]
        replayed = [e["name"] for e in experiments if e["replayed"]]
        assert len(replayed) == 1  # the replay's visits have their own experiment, apart from live requests
        groups = _get(f"{api}/ab/summary?experiment={replayed[0]}")["groups"]
        assert groups["control"]["exposures"] > 0 and groups["treatment"]["exposures"] > 0
        _model_against_model(env, tmp_path, api, str(version), str(lines["customer_id"].iloc[0]))

        ui = f"http://127.0.0.1:{ports['ui']}"
        with urllib.request.urlopen(f"{ui}/_stcore/health", timeout=10) as health:
            assert health.status == 200
        if Path(CHROMIUM).exists():
            for language in LANGUAGES:  # a marketer reads every page in Spanish
                check_pages(ui, str(lines["customer_id"].iloc[-1]), tmp_path / "screenshots", language)
    finally:
        down = subprocess.run([RECSYS, "down"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert down.returncode == 0, down.stderr
    assert not list((tmp_path / ".run" / "system").glob("*.json"))
    assert not any(port_in_use("127.0.0.1", port) for port in ports.values())

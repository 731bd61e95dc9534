"""What the serving benchmarks share: a synthetic shop with a published model and live stream state, and API
processes started the way `recsys serve` starts them (the same uvicorn options, `cli.serve_cmd.UVICORN_OPTIONS`)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from batch.evaluation.result import EvaluationOptions
from batch.pipeline import run
from batch.stages import Stages
from common.data import LoadedData, load_history, load_mapping
from common.data.synthetic import SyntheticSpec, write
from common.keys import KeyLayout
from common.redis_clients import async_client, sync_client
from common.settings import Settings
from producers.replay import to_events
from stack.scratch import settings_env
from stack.system import wait_http
from stream_app.state import StateWriter


def prepare_shop(settings: Settings, work: Path, data: Path | None = None,
                 preset: str = "case_study") -> LoadedData:
    """A published model and live stream state (written directly, not through Kafka) for a shop: the history at
    `data` (read with the `preset` mapping), or the synthetic shop."""
    if data is None:
        write(SyntheticSpec(), work / "data")
        data, preset = work / "data", "case_study"
    loaded = load_history(data, load_mapping(preset))
    keys = KeyLayout(settings.key_prefix)
    run(loaded, EvaluationOptions(case_study=False), work / "artifacts", sync_client(settings), keys,
        Stages(), progress=lambda _m: None)

    async def stream_state() -> None:
        client = async_client(settings)
        writer = StateWriter(client, keys)
        events = list(to_events(loaded.lines))
        for start in range(0, len(events), 1000):
            await writer.apply(events[start:start + 1000])
        await client.aclose()

    asyncio.run(stream_state())
    return loaded


def start_server(target: str, settings: Settings, port: int, workers: int, log: Path,
                 env: dict[str, str] | None = None, ready_path: str = "/ready",
                 http: str | None = None) -> subprocess.Popen[bytes]:
    """`target` (module:factory) under uvicorn with the production options (`http`: another HTTP protocol, e.g.
    stock "httptools"), ready when `ready_path` answers."""
    options = f"UVICORN_OPTIONS | {{'http': {http!r}}}" if http else "UVICORN_OPTIONS"
    code = ("import uvicorn; from cli.serve_cmd import UVICORN_OPTIONS; "
            f"uvicorn.run({target!r}, factory=True, host='127.0.0.1', port={port}, workers={workers}, "
            f"log_level='warning', **({options}))")
    with log.open("ab") as out:
        server = subprocess.Popen([sys.executable, "-c", code], env=settings_env(settings) | (env or {}),
                                  stdout=out, stderr=subprocess.STDOUT)
    if not wait_http(f"http://127.0.0.1:{port}{ready_path}", 60, alive=lambda: server.poll() is None):
        server.terminate()
        raise RuntimeError(f"{target} did not become ready; see {log}")
    return server


def stop_server(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time so far of a process and its live children (uvicorn's workers), from /proc."""
    return sum(process_cpu(pid).values())


def process_cpu(pid: int) -> dict[int, float]:
    """CPU seconds so far of a process and of each of its live descendants (a Redis node's rewrite child), by pid:
    deltas by pid stay right when a child ends between two readings."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return {}  # it ended between two reads
    out = {pid: (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")}
    for child in children:
        out |= process_cpu(int(child))
    return out

"""A throwaway local stack for tests and benchmarks that start their own: settings on free loopback ports, the
environment a `recsys` child needs to use them, and a stream worker and an archiver run the way a user runs
them."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
from pathlib import Path
from typing import Any

from common.settings import CLUSTER_BUS_OFFSET, CLUSTER_PORT_MAX, Settings
from stack.system import RECSYS


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_cluster_ports(nodes: int) -> int:
    """The first of ``nodes`` consecutive free ports whose cluster bus ports (each + 10000) are free too, all below
    the kernel's ephemeral range, where an outgoing connection could take one between this check and the start."""
    ephemeral_start = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for _ in range(200):
        last = min(ephemeral_start, CLUSTER_PORT_MAX) - CLUSTER_BUS_OFFSET - nodes
        first = random.randrange(10_000, last if last > 10_100 else CLUSTER_PORT_MAX - CLUSTER_BUS_OFFSET - nodes)
        wanted = [port + bus for port in range(first, first + nodes) for bus in (0, CLUSTER_BUS_OFFSET)]
        if all(_can_bind(port) for port in wanted):
            return first
    raise RuntimeError(f"no {nodes} consecutive free ports (and their bus ports) on loopback")


def _can_bind(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def stack_settings(run_dir: Path, **overrides: Any) -> Settings:
    """Settings for a stack of its own under ``run_dir``, ignoring any .env file; ``overrides`` are more fields
    (``redis_cluster=True`` takes a block of ports a local cluster can use)."""
    redis_port = (free_cluster_ports(overrides.get("stack_redis_nodes", 3) + 1) if overrides.get("redis_cluster")
                  else free_port())
    return Settings(
        broker_url=f"kafka://127.0.0.1:{free_port()}",
        redis_url=f"redis://127.0.0.1:{redis_port}/0",
        run_dir=run_dir,
        _env_file=None,
        **overrides,
    )


def settings_env(settings: Settings) -> dict[str, str]:
    return os.environ | {
        "RECSYS_BROKER_URL": settings.broker_url,
        "RECSYS_REDIS_URL": settings.redis_url,
        "RECSYS_REDIS_CLUSTER": str(settings.redis_cluster).lower(),
        "RECSYS_KEY_PREFIX": settings.key_prefix,
        "RECSYS_TOPIC_PURCHASES": settings.topic_purchases,
        "RECSYS_TOPIC_DEAD_LETTERS": settings.topic_dead_letters,
        "RECSYS_TOPIC_EXPOSURES": settings.topic_exposures,
        "RECSYS_TOPIC_CUSTOMERS": settings.topic_customers,
        "RECSYS_TOPIC_PRODUCTS": settings.topic_products,
        "RECSYS_TOPIC_DATA_REPORTS": settings.topic_data_reports,
        "RECSYS_STREAM_APP_ID": settings.stream_app_id,
        "RECSYS_DEAD_LETTER_MAX_RAW_BYTES": str(settings.dead_letter_max_raw_bytes),
        "RECSYS_RUN_DIR": str(settings.run_dir),
        "RECSYS_ARCHIVE_URL": settings.archive_url or "",  # empty: the default under the run folder
        "RECSYS_ARCHIVE_FLUSH_S": str(settings.archive_flush_s),
        "RECSYS_ARCHIVE_GROUP": settings.archive_group,
    }


def start_worker(settings: Settings, log: Path, *options: str) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [RECSYS, "stream", "--loglevel", "warning", *options], env=settings_env(settings), stdout=out,
            stderr=subprocess.STDOUT, cwd=log.parent,
        )


def start_archiver(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen([RECSYS, "archive", "--loglevel", "info"], env=settings_env(settings), stdout=out,
                                stderr=subprocess.STDOUT, cwd=log.parent)


def stop_worker(worker: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if worker.poll() is None:
        worker.send_signal(sig)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()

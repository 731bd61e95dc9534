"""The SparkSession the engine runs on: built from settings, quiet on the console, followed by periodic progress
lines, and stopped when the run ends."""

from __future__ import annotations

import os
import re
import shutil
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from pyspark import SparkContext
from pyspark.errors import PySparkRuntimeError
from pyspark.sql import SparkSession

from batch.engine import EngineUnavailable
from batch.spark import INSTALL_HINT
from common.settings import Settings

APP_NAME = "recsys-batch"
LOG_CONFIG = Path(__file__).with_name("log4j2.properties")
# FPGrowth's trees are as deep as a basket has frequent products, and Java serialises them recursively: on Online
# Retail (433 in one basket) a task overflowed the default 1 MiB thread stack. 16 MiB held; it is only reserved.
THREAD_STACK = "16m"
PROGRESS_EVERY_S = 5.0
LOCAL_MASTER = re.compile(r"^local(\[(\*|\d+)(,\s*\d+)?\])?$")


@dataclass(frozen=True)
class SparkOptions:
    """Where Spark runs and where it reads the history from.

    `staging` is where the driver writes the cleaned history as Parquet; every executor must be able to read it
    (any local path for local[*]; a shared mount or an object-store URL on a cluster). `conf` is passed to Spark
    as is (executor memory and cores, connectors, ...)."""

    master: str = "local[*]"
    driver_memory: str = "4g"
    staging: str = ".run/spark"
    conf: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings, master: str | None = None,
                      conf: Mapping[str, str] | None = None) -> SparkOptions:
        return cls(master=master or settings.spark_master, driver_memory=settings.spark_driver_memory,
                   staging=settings.spark_staging or str(settings.run_dir / "spark"), conf=dict(conf or {}))


def local_cores(master: str) -> int | None:
    """Cores of a local master (local, local[4], local[*], local[4,2]); None for a cluster master."""
    match = LOCAL_MASTER.match(master.strip())
    if match is None:
        return None
    cores = match.group(2)
    if cores is None:
        return 1
    return (os.cpu_count() or 1) if cores == "*" else int(cores)


def session_config(options: SparkOptions) -> dict[str, str]:
    """Every setting the session is built with; `options.conf` wins over the defaults here."""
    config = {
        "spark.master": options.master,
        "spark.app.name": APP_NAME,
        "spark.driver.memory": options.driver_memory,
        # Output a person reads is the CLI's: no web UI, no console progress bars (progress is reported below).
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.session.timeZone": "UTC",
        "spark.driver.extraJavaOptions": f"-Xss{THREAD_STACK} -Dlog4j.configurationFile={LOG_CONFIG}",
        "spark.executor.extraJavaOptions": f"-Xss{THREAD_STACK}",
    }
    cores = local_cores(options.master)
    if cores is not None:
        # Spark's default of 200 shuffle partitions is meant for clusters; on one machine each costs a task.
        config["spark.sql.shuffle.partitions"] = str(2 * cores)
    return config | dict(options.conf)


def java_executable() -> str | None:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").exists():
        return str(Path(java_home) / "bin" / "java")
    return shutil.which("java")


@contextmanager
def spark_session(options: SparkOptions) -> Iterator[SparkSession]:
    """A new session for one run, stopped at the end. Raises EngineUnavailable when it cannot start."""
    if java_executable() is None:
        raise EngineUnavailable(f"Spark needs Java 17 and none was found (JAVA_HOME or java on PATH): {INSTALL_HINT}")
    # PySpark warns about pandas >= 3 on import; the engine never hands Spark a pandas frame (Parquet and Arrow
    # only), so the warning would only alarm the reader.
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
    if local_cores(options.master) is not None:
        # Everything runs in the one JVM this process starts, which inherits this environment: bind it to
        # loopback (Spark otherwise looks for a public interface and warns that the host name resolves locally).
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = SparkSession.builder
    for key, value in session_config(options).items():
        builder = builder.config(key, value)
    try:
        session = builder.getOrCreate()
    except PySparkRuntimeError as exc:
        raise EngineUnavailable(f"Spark did not start on {options.master} ({exc}); it needs Java 17+: "
                               f"{INSTALL_HINT}") from None
    session.sparkContext.setLogLevel("WARN")
    try:
        yield session
    finally:
        session.stop()
        end_jvm()


def end_jvm(timeout_s: float = 30.0) -> None:
    """Ends the JVM this process started for Spark. `SparkSession.stop` keeps it for a later session in the same
    process, so a run (or a test module) would leave a process behind until Python exits; the JVM ends when the
    pipe to its stdin closes."""
    gateway = SparkContext._gateway
    if gateway is None:
        return
    process = getattr(gateway, "proc", None)  # None when the JVM was not started by this process
    gateway.shutdown()
    SparkContext._gateway = None
    SparkContext._jvm = None
    if process is not None:
        process.stdin.close()
        process.wait(timeout=timeout_s)


class StageProgress:
    """While open, reports Spark's active stages (tasks done / total) every `every_s` seconds when they change,
    so a long fit shows it is moving."""

    def __init__(self, session: SparkSession, report: Callable[[str], None], every_s: float = PROGRESS_EVERY_S):
        self.tracker = session.sparkContext.statusTracker()
        self.report = report
        self.every_s = every_s
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="spark-progress", daemon=True)
        self._last = ""

    def __enter__(self) -> StageProgress:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._done.set()
        self._thread.join()

    def snapshot(self) -> str:
        parts = []
        for stage_id in sorted(self.tracker.getActiveStageIds()):
            info = self.tracker.getStageInfo(stage_id)
            if info is not None:
                parts.append(f"stage {stage_id} ({info.name}) {info.numCompletedTasks}/{info.numTasks} tasks")
        return "; ".join(parts)

    def _loop(self) -> None:
        while not self._done.wait(self.every_s):
            line = self.snapshot()
            if line and line != self._last:
                self.report(f"  spark: {line}")
            self._last = line


def jvm_peak_rss_mib(parent: int | None = None) -> float | None:
    """Peak resident memory (VmHWM) of the JVM this process started, in MiB; in local mode the executors run in
    it too. None where /proc is absent or no such child runs."""
    parent = os.getpid() if parent is None else parent
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
            status = (entry / "status").read_text()
        except OSError:
            continue
        # stat: "pid (comm) state ppid ..."; comm may hold spaces, so split after its closing parenthesis.
        comm = stat[stat.find("(") + 1:stat.rfind(")")]
        ppid = int(stat[stat.rfind(")") + 2:].split()[1])
        if ppid == parent and comm == "java":
            peak = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
            return int(peak.group(1)) / 1024 if peak else None
    return None

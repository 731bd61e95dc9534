import contextlib
import os
import signal
import uuid
from importlib.util import find_spec
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
UCI_PATH = SHARED_DATA / "online_retail_uci" / "online_retail.csv.gz"
GROCERIES_PATH = SHARED_DATA / "groceries" / "groceries.csv"


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES


def spark_missing() -> str | None:
    """Why the Spark engine cannot run here, or None when pyspark and Java are both present."""
    if find_spec("pyspark") is None:
        return "pyspark is not installed (pip install -e '.[spark]')"
    from batch.spark.session import java_executable

    if java_executable() is None:
        return "no Java (JAVA_HOME or java on PATH); Spark needs Java 17 (apt-get install openjdk-17-jre-headless)"
    return None


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("spark") is not None and (reason := spark_missing()) is not None:
        pytest.skip(reason)


# Every process a test starts inherits this mark; whatever still carries it when the session ends outlived its
# test (a server a fixture did not stop, a child its parent left behind): it is stopped, and the run fails.
SESSION_MARK = "RECSYS_TEST_SESSION"
os.environ.setdefault(SESSION_MARK, uuid.uuid4().hex)


def leftover_processes(mark: str, own: int) -> dict[int, str]:
    """pid -> command line of every process (but `own`) whose environment carries `mark`."""
    found = {}
    needle = f"{SESSION_MARK}={mark}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == own:
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()[:200]
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return found


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if getattr(session.config, "workerinput", None) is not None:
        return
    leftovers = leftover_processes(os.environ[SESSION_MARK], os.getpid())
    for pid in leftovers:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    if leftovers:
        lines = "\n".join(f"  {pid}: {cmd}" for pid, cmd in leftovers.items())
        session.config.get_terminal_writer().line(f"PROCESSES LEFT RUNNING BY THE TESTS (now killed):\n{lines}",
                                                  red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED

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

"""The Spark session of one run leaves no process behind."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyspark import SparkContext

from batch.spark.session import SparkOptions, spark_session

pytestmark = [pytest.mark.integration, pytest.mark.spark]


def test_the_jvm_ends_with_the_session_and_a_later_session_starts_a_new_one(tmp_path: Path) -> None:
    options = SparkOptions(master="local[1]", driver_memory="512m", staging=str(tmp_path))
    with spark_session(options) as session:
        jvm = SparkContext._gateway.proc  # type: ignore[union-attr]
        assert session.range(5).count() == 5
    assert jvm.poll() is not None, "the JVM outlived its session"
    with spark_session(options) as session:
        assert session.range(3).count() == 3

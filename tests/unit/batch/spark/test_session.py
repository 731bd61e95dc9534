"""How the Spark session is configured and where the staged history lives, without starting Spark."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("pyspark", reason="the Spark engine's unit tests need pyspark (pip install -e '.[spark]')")

from batch.spark.history import Location, micros, staged_table
from batch.spark.session import LOG_CONFIG, SparkOptions, jvm_peak_rss_mib, local_cores, session_config
from common.settings import Settings


@pytest.mark.parametrize(("master", "cores"), [
    ("local", 1), ("local[3]", 3), ("local[*]", os.cpu_count()), ("local[2, 4]", 2),
    ("spark://10.0.0.5:7077", None), ("yarn", None), ("k8s://https://host:443", None),
])
def test_local_cores(master: str, cores: int | None) -> None:
    assert local_cores(master) == cores


def test_a_local_session_is_quiet_and_sized_for_its_cores() -> None:
    config = session_config(SparkOptions(master="local[2]", driver_memory="1g"))
    assert config["spark.master"] == "local[2]" and config["spark.driver.memory"] == "1g"
    assert config["spark.ui.enabled"] == "false" and config["spark.ui.showConsoleProgress"] == "false"
    assert config["spark.sql.shuffle.partitions"] == "4"
    assert config["spark.sql.session.timeZone"] == "UTC"
    # Spark's own logging: warnings only, from the configuration shipped with the package
    assert config["spark.driver.extraJavaOptions"] == f"-Xss16m -Dlog4j.configurationFile={LOG_CONFIG}"
    assert config["spark.executor.extraJavaOptions"] == "-Xss16m"
    assert "rootLogger.level = warn" in LOG_CONFIG.read_text()


def test_a_cluster_session_keeps_sparks_partitioning_and_conf_wins() -> None:
    options = SparkOptions(master="spark://10.0.0.5:7077",
                           conf={"spark.executor.memory": "8g", "spark.ui.enabled": "true"})
    config = session_config(options)
    assert "spark.sql.shuffle.partitions" not in config
    assert config["spark.executor.memory"] == "8g" and config["spark.ui.enabled"] == "true"


def test_options_from_settings() -> None:
    settings = Settings(run_dir=Path("/srv/run"), spark_master="spark://m:7077", spark_driver_memory="6g")
    options = SparkOptions.from_settings(settings, conf={"spark.executor.cores": "4"})
    assert (options.master, options.driver_memory, options.staging) == ("spark://m:7077", "6g", "/srv/run/spark")
    assert options.conf == {"spark.executor.cores": "4"}
    assert SparkOptions.from_settings(settings, master="local[2]").master == "local[2]"
    staged = Settings(spark_staging="s3://bucket/recsys")
    assert SparkOptions.from_settings(staged).staging == "s3://bucket/recsys"


def test_a_local_staging_path_is_read_by_spark_as_a_file_url(tmp_path: Path) -> None:
    location = Location.parse(str(tmp_path / "spark")).child("history-1")
    assert location.path == str(tmp_path / "spark" / "history-1")
    # explicit file://, so a cluster whose default filesystem is HDFS still reads the shared mount
    assert location.url == f"file://{tmp_path}/spark/history-1"


@pytest.mark.parametrize(("written", "read"), [
    ("hdfs://namenode:8020/recsys", "hdfs://namenode:8020/recsys"),
    ("s3://bucket/recsys", "s3a://bucket/recsys"),
])
def test_spark_reads_a_url_under_its_connectors_scheme(written: str, read: str) -> None:
    assert Location.spark_url(written) == read


def test_event_times_are_staged_as_utc_microseconds() -> None:
    lines = pd.DataFrame({"customer_id": ["c"] * 2, "order_id": ["o1", "o2"], "product_id": ["p", "q"],
                          "category": ["x", "x"], "units": [1, 2], "amount": [1.5, 2.0],
                          "event_time": pd.to_datetime(["1970-01-01 00:00:01.000000", "2024-03-01 12:00:00.000250"])})
    table = staged_table(lines)
    assert table.column_names == ["customer_id", "order_id", "product_id", "category", "units", "amount",
                                  "event_us"]
    assert table.column("event_us").to_pylist() == [1_000_000, 1_709_294_400_000_250]
    assert micros(pd.Timestamp("2024-03-01 12:00:00.000250")) == 1_709_294_400_000_250


def test_no_jvm_child_means_no_figure() -> None:
    with subprocess.Popen(["sleep", "5"]) as childless:
        try:
            assert jvm_peak_rss_mib(parent=childless.pid) is None
        finally:
            childless.kill()

"""The Spark engine: Spark fits the heavy models (MLlib ALS; rules from counted pairs, MLlib FPGrowth for longer
ones) over the cleaned history staged as Parquet;
everything else (EDA, segments, evaluation, reports, publish) is the single-machine code, run in the driver.

Needs the `spark` extra (pyspark 4.x) and Java 17. Importing this package without pyspark raises
EngineUnavailable, whose message says how to install it."""

from importlib.util import find_spec

from batch.engine import EngineUnavailable

INSTALL_HINT = "pip install -e '.[spark]' (make install does it) and Java 17 (openjdk-17-jre-headless)"

if find_spec("pyspark") is None:
    raise EngineUnavailable(f"the Spark engine needs pyspark: {INSTALL_HINT}")

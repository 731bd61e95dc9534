"""The cleaned history as Spark sees it: written once per run as Parquet by the driver, read back by the executors
for each training window."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyarrow import fs
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from batch.interactions import Interactions

STAGED_COLUMNS = ["customer_id", "order_id", "product_id", "category", "units", "amount"]
# Hadoop's connector reads under its own scheme what pyarrow writes as s3://.
SPARK_SCHEMES = {"s3": "s3a"}
WEIGHTINGS = ("amount", "binary", "log_orders")  # as `Interactions.weighted`


@dataclass(frozen=True)
class Location:
    """One staging place seen from both sides: the filesystem and path the driver writes with (pyarrow), and
    the URL the executors read (Spark)."""

    filesystem: fs.FileSystem
    path: str
    url: str

    @classmethod
    def parse(cls, location: str) -> Location:
        """A plain path is local (on a cluster: a shared mount at the same path on every node); a URL (s3://,
        gs://, hdfs://, ...) names its filesystem."""
        scheme = urlsplit(location).scheme
        if len(scheme) <= 1:  # no scheme
            absolute = Path(location).resolve()
            return cls(fs.LocalFileSystem(), str(absolute), absolute.as_uri())
        filesystem, path = fs.FileSystem.from_uri(location)
        return cls(filesystem, path, cls.spark_url(location))

    @staticmethod
    def spark_url(url: str) -> str:
        """`url` under the scheme Spark's connector reads it with."""
        scheme = urlsplit(url).scheme
        return SPARK_SCHEMES.get(scheme, scheme) + url[len(scheme):]

    def child(self, name: str) -> Location:
        return Location(self.filesystem, f"{self.path.rstrip('/')}/{name}", f"{self.url.rstrip('/')}/{name}")


def staged_table(lines: pd.DataFrame) -> pa.Table:
    """The lines as written for Spark: event time as integer microseconds since the epoch (UTC), which no
    time-zone setting can shift."""
    table = pa.Table.from_pandas(lines[STAGED_COLUMNS], preserve_index=False)
    micros = lines["event_time"].to_numpy(dtype="datetime64[us]").astype(np.int64)
    return table.append_column("event_us", pa.array(micros, type=pa.int64()))


def micros(moment: pd.Timestamp) -> int:
    return int(moment.to_datetime64().astype("datetime64[us]").astype(np.int64))


@dataclass
class SparkHistory:
    """The staged lines of one run. Each model asks for the window its `Interactions` was built from."""

    session: SparkSession
    location: Location
    lines: int

    @classmethod
    def stage(cls, session: SparkSession, lines: pd.DataFrame, staging: str) -> SparkHistory:
        """Write `lines` as Parquet under a new folder of `staging`."""
        location = Location.parse(staging).child(f"history-{uuid.uuid4().hex[:12]}")
        location.filesystem.create_dir(location.path, recursive=True)
        pq.write_table(staged_table(lines), f"{location.path}/lines.parquet", filesystem=location.filesystem)
        return cls(session, location, len(lines))

    def remove(self) -> None:
        self.location.filesystem.delete_dir(self.location.path)

    def frame(self) -> DataFrame:
        return self.session.read.parquet(f"{self.location.url}/lines.parquet")

    def window(self, data: Interactions) -> DataFrame:
        """The staged lines `data` was built from: everything up to its last event. Checked by count, since a
        window cut any other way (by product, say) would silently train on other data."""
        window = self.frame().where(F.col("event_us") <= F.lit(micros(data.end)))
        found = window.count()
        if found != len(data.lines):
            raise ValueError(f"the staged history holds {found:,} lines up to {data.end}, the training window "
                             f"{len(data.lines):,}: it must be every line up to its last event")
        return window

    def index(self, ids: np.ndarray, id_column: str, index_column: str) -> DataFrame:
        """id -> its position in `ids` (the driver's row or column order), for MLlib's integer ids."""
        table = pa.table({id_column: pa.array(ids.astype(str)),
                          index_column: pa.array(np.arange(len(ids), dtype=np.int32))})
        return self.session.createDataFrame(table)

    def ratings(self, data: Interactions, weighting: str) -> DataFrame:
        """(row, col, rating) per customer and product bought in the window; the rating is what
        `Interactions.weighted` puts in the cell: the amount paid, 1, or 1 + log of the distinct orders."""
        if weighting not in WEIGHTINGS:
            raise ValueError(f"unknown weighting {weighting!r}; use one of {', '.join(WEIGHTINGS)}")
        pairs = (self.window(data).groupBy("customer_id", "product_id")
                 .agg(F.countDistinct("order_id").alias("orders"), F.sum("amount").alias("amount")))
        rating: Column = {"amount": F.col("amount"), "binary": F.lit(1.0),
                          "log_orders": 1.0 + F.log(F.col("orders"))}[weighting]
        return (pairs.join(self.index(data.customer_ids, "customer_id", "row"), "customer_id")
                .join(self.index(data.product_ids, "product_id", "col"), "product_id")
                .select("row", "col", rating.cast("float").alias("rating")))

    def baskets(self, data: Interactions) -> DataFrame:
        """One row per order of the window: `items`, its distinct products."""
        return self.window(data).groupBy("order_id").agg(F.collect_set("product_id").alias("items"))


def factor_matrix(factors: DataFrame, rows: int, rank: int) -> np.ndarray:
    """MLlib's (id, features) factor frame as a dense rows x rank array; ids MLlib never saw stay zero."""
    table = factors.select("id", "features").toArrow()
    ids = table.column("id").to_numpy()
    flat = pc.list_flatten(table.column("features")).to_numpy().astype(np.float32)
    matrix = np.zeros((rows, rank), dtype=np.float32)
    matrix[ids] = flat.reshape(len(ids), rank)
    return matrix

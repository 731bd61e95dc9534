"""One Settings object for every component; values come from RECSYS_* env vars or a .env file."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from common.assignment import REPLAY_PREFIX
from common.events import AMOUNT_CEILING, EXPERIMENT_PATTERN, UNITS_CEILING, EventBounds, experiment_name

CLUSTER_BUS_OFFSET = 10_000  # a Redis Cluster node also listens at its port + 10000, for the other nodes
CLUSTER_PORT_MAX = 65_535 - CLUSTER_BUS_OFFSET
MIN_KEY_LENGTH = 32  # API keys: long enough that guessing them over HTTP is hopeless


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RECSYS_", env_file=".env", extra="ignore")

    # Servers. The local stack starts its broker and Redis on the ports these URLs name.
    broker_url: str = "kafka://127.0.0.1:19092"
    redis_url: str = "redis://127.0.0.1:16379/0"
    # Redis Cluster: RECSYS_REDIS_URL names any node (database 0). The local stack then starts `stack_redis_nodes`
    # masters at the URL's port and the next ones, each with its own append-only file.
    redis_cluster: bool = False
    stack_redis_nodes: int = Field(default=3, ge=1, le=64)

    # Topics.
    topic_purchases: str = "purchases"
    topic_dead_letters: str = "purchases-dlq"
    topic_exposures: str = "exposures"
    # Master data, compacted and keyed by id (the latest record per key wins), and the source files' cleaning
    # reports as recorded when they were replayed.
    topic_customers: str = "customers"
    topic_products: str = "products"
    topic_data_reports: str = "data-reports"
    topic_partitions: int = Field(default=4, ge=1)

    # Every Redis key lives under this prefix (tests use their own).
    key_prefix: str = "recsys"

    # Ports of the HTTP components.
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    ui_port: int = 8501
    ui_api_url: str | None = None  # where the UI finds the API (default: http://api_host:api_port)
    ui_refresh_s: float = Field(default=3.0, gt=0)  # the live page's refresh period
    ui_language: Literal["en", "es"] = "en"  # the live view's first language (each browser session can switch)
    # The shop's currency (ISO 4217) for amounts in the live view; unset: the one the model's data mapping names
    # (COP for the case study, GBP for the UCI preset).
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")

    # Folders.
    run_dir: Path = Path(".run")
    data_dir: Path = Path("data")
    artifacts_dir: Path = Path("artifacts")

    # Local redis-server persistence (under <run_dir>/stack/redis). `everysec` fsyncs the append-only file once a
    # second: a crash of the machine can lose up to ~1 s of writes; `always` loses none and costs a disk flush per
    # write. RDB snapshots ("seconds changes" pairs) are off: the append-only file holds every write already, and
    # each snapshot of the whole dataset competed with serving for the cores (docs/scaling.md, publishing).
    redis_appendfsync: Literal["always", "everysec", "no"] = "everysec"
    redis_save: str = Field(default="", pattern=r"^(\d+ \d+)( \d+ \d+)*$|^$")
    # Local redis-server's memory ceiling, with `noeviction`: a full Redis refuses writes (the stream waits) rather
    # than evicting state. About 11 KB per customer of stream state and 1.2 KB per customer per model version
    # (docs/scaling.md): 4 GB holds some 250k customers with three versions.
    redis_maxmemory: str = Field(default="4gb", pattern=r"^[0-9]+(b|kb|mb|gb)?$")

    # Purchase archive: every valid purchase once, as Parquet partitioned by event date (date=YYYY-MM-DD). A folder
    # or any URL pyarrow's filesystems accept (s3://bucket/path, gs://...); default <run_dir>/archive.
    archive_url: str | None = None
    archive_group: str = "recsys-archive"  # the archiver's consumer group
    archive_flush_s: float = Field(default=10.0, gt=0)  # nothing consumed waits longer than this to be written
    archive_flush_rows: int = Field(default=50_000, ge=1)  # or this many buffered purchases
    archive_known_ids_max: int = Field(default=2_000_000, ge=1)  # event ids of recent date partitions kept in memory
    archive_compact_files: int = Field(default=32, ge=2)  # a date partition with more files is merged into one

    # Faust consumer-group timings; Tansu joins in ~5 s with these instead of ~30 s with the defaults.
    broker_session_timeout: float = 10.0
    broker_rebalance_timeout: float = 10.0
    broker_heartbeat_interval: float = 1.0

    # Largest event payload accepted; bigger ones are dead-lettered.
    max_event_bytes: int = 4096
    # What one order line may say (common.events.EventBounds), on every way in: POST, the replay, the worker, the
    # archiver and the batch. The defaults keep every integer sum in Redis far from 2^63 (one line is at most
    # 10^11 cents) and leave room for large B2B lines (the case study's largest is 20,952,000 COP, UCI's 80,995
    # units). Event times: at most `event_max_future_s` after the receiver's clock, and not before
    # `event_earliest` (lower it to replay older history).
    event_max_units: int = Field(default=EventBounds.max_units, ge=1, le=UNITS_CEILING)
    event_max_amount: float = Field(default=EventBounds.max_amount, gt=0, le=AMOUNT_CEILING)
    event_max_future_s: float = Field(default=EventBounds.max_future.total_seconds(), ge=0, le=7 * 86400)
    event_earliest: datetime = EventBounds.earliest
    # Payload bytes kept in a dead letter. A letter must fit in one produce request (1 MB by default); the whole
    # payload stays in its source topic at the offset the letter names.
    dead_letter_max_raw_bytes: int = Field(default=65_536, ge=0)

    # Stream worker.
    stream_app_id: str = "recsys-stream"  # also the consumer group
    # At most 5,000: the script unpacks one customer's event ids into one Redis call (Lua's limit is 8,000).
    stream_batch_size: int = Field(default=1000, ge=1, le=5000)
    stream_batch_within_s: float = Field(default=0.2, gt=0)
    # Faust stops fetching a partition whose stream buffer is nearly full and restarts when it drains; at Faust's
    # default (4,096) that left the worker idle a third of the time (benchmarks/stream_throughput.py). Counted in
    # records' weights, one per started KB (stream_app.transport.WeighedQueue): a purchase weighs one.
    stream_buffer_maxsize: int = Field(default=32_768, ge=1)
    stream_fetch_max_wait_ms: int = Field(default=100, ge=1)  # see stream_app/transport.py
    recent_products: int = Field(default=20, ge=1)  # per-customer recent list length
    guard_retention_days: int = Field(default=400, ge=1)  # event-time window of the idempotency guard
    dead_letter_keep_days: float = Field(default=7.0, gt=0)  # dead-letter ids kept (wall time) to count each once

    # Nightly batch.
    batch_test_days: int = Field(default=30, ge=1)  # test period (and validation period) length
    # History the nightly run reads from the archive: the newest this many days of date partitions (older ones are
    # never opened). Unset: all of it.
    batch_history_days: int | None = Field(default=730, ge=60)
    batch_keep_versions: int = Field(default=3, ge=2)  # published model versions kept in Redis
    # The publish's write rate into Redis, so serving keeps its latency while a big model goes in (0: unpaced).
    publish_mb_per_s: float = Field(default=8.0, ge=0)
    publish_busy_share: float = Field(default=0.2, gt=0, le=1)
    # `batch run` evaluates (temporal split, every model, the ranker's windows and settings: most of a big shop's
    # run) when the newest evaluation among the versions in the artifacts is this many days old; the runs between
    # refit every model on all data and the ranker on the latest window with its settings. 1: every run evaluates.
    batch_evaluate_every_days: int = Field(default=7, ge=1)
    batch_schedule_at: str = Field(default="02:00", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")  # UTC HH:MM
    # The batch plans every big allocation within this many GiB (batch/memory.py) and stops with a one-line
    # error naming this setting when even its smallest plan does not fit.
    batch_memory_gb: float = Field(default=8.0, gt=0)
    # EASE (item x item) runs on at most this many products, the most bought by distinct customers; the other
    # models and the hybrid cover the rest. The plan lowers it further when the budget asks for it.
    batch_ease_max_items: int = Field(default=20_000, ge=1)
    # Customers scored per evaluation (a seeded sample when more bought on both sides of the split).
    batch_eval_max_customers: int = Field(default=20_000, ge=1)
    # Labelled windows (each as long as the validation period) the ranker trains on, before the validation period;
    # fewer when the history is short. Each costs one more fit of the candidate generators.
    batch_ranker_windows: int = Field(default=2, ge=1, le=6)
    # A training window's generators are fitted on at most this many customers (a seeded sample): past it, a full
    # fit per window costs more than the ranker gains from it.
    batch_ranker_fit_max_customers: int = Field(default=50_000, ge=100)
    # Customers whose labels the ranker learns from, per window (training, validation, the nightly refit's): a
    # seeded sample past it. LambdaMART learns how to weigh a few dozen features; a few thousand customers with a
    # few hundred candidates each show it that, and every customer more costs training time in proportion.
    batch_ranker_max_customers: int = Field(default=5_000, ge=100)

    # Spark engine (`recsys batch run --engine spark`; docs/scaling.md). The staging location holds the cleaned
    # history as Parquet for the executors: a local path for local[*], a shared mount or an object-store URL
    # (s3://, gs://, hdfs://) on a cluster. Default: <run_dir>/spark.
    spark_master: str = "local[*]"
    spark_driver_memory: str = Field(default="4g", pattern=r"^[0-9]+[kmgtKMGT]?$")
    spark_staging: str | None = None

    # A/B experiment: sticky buckets by hash(salt, customer id); treatment gets `ab_treatment_percent` of 100.
    ab_experiment: str = Field(default="rec-v1", pattern=EXPERIMENT_PATTERN)
    ab_salt: str = "recsys-ab-2026"
    ab_treatment_percent: int = Field(default=50, ge=0, le=100)
    ab_attribution_days: float = Field(default=7.0, gt=0)  # event time from exposure to purchase
    # Always-valid inference (experiments/always_valid.py): the error rate, the exposed customers at which the interval
    # is narrowest, and the smallest differences that matter (conversion points; money per exposed customer):
    # an interval inside +/- these stops the experiment with "no practical difference".
    ab_alpha: float = Field(default=0.05, gt=0, lt=1)
    ab_planned_customers: int = Field(default=5000, ge=1)
    ab_min_effect: float = Field(default=0.01, ge=0)
    ab_min_revenue_effect: float = Field(default=1.0, ge=0)
    ab_srm_alpha: float = Field(default=0.001, gt=0, lt=1)  # sample-ratio mismatch alarm below this p-value
    # CUPED: each exposed customer's spend in this many days of event time before their first exposure is the
    # covariate of the regression-adjusted comparison.
    ab_cuped_pre_days: float = Field(default=28.0, gt=0)

    # API.
    # redis-py blocking pool of the endpoints other than /recommend (whose reads share one connection)
    api_redis_pool_size: int = Field(default=200, ge=1)
    api_redis_timeout_s: float = Field(default=1.0, gt=0)
    api_model_check_s: float = Field(default=1.0, ge=0)  # how stale the cached `current` model pointer may be
    api_catalogue_check_s: float = Field(default=5.0, ge=0)  # how stale the cached live product catalogue may be
    recommend_basket_hours: float = Field(default=24.0, gt=0)  # "today's basket" in the customer's event time
    api_exposure_queue_max: int = Field(default=50_000, ge=1)  # exposures held while the broker is away
    api_ingest_max_lines: int = Field(default=1000, ge=1)  # purchases per POST /events/purchases
    api_ingest_timeout_s: float = Field(default=5.0, gt=0)  # broker acknowledgement (acks=all) wait, then 503
    # Required (header X-API-Key) by state-changing API actions; unset means those actions are disabled.
    api_key: SecretStr | None = None
    # When set, every route but /health and /ready needs X-API-Key: this read key, or the API key.
    api_read_key: SecretStr | None = None
    ui_password: SecretStr | None = None  # when set, the UI asks for it first

    @field_validator("api_key", "api_read_key", "ui_password", "archive_url", "currency", mode="before")
    @classmethod
    def _empty_means_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("api_key", "api_read_key")
    @classmethod
    def _keys_are_long(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_KEY_LENGTH:
            raise ValueError(f"must be at least {MIN_KEY_LENGTH} characters (e.g. `openssl rand -hex 32`)")
        return value

    @field_validator("ab_experiment")
    @classmethod
    def _live_experiment_is_not_a_replay(cls, value: str) -> str:
        experiment_name(value)
        if value.startswith(REPLAY_PREFIX):  # those names belong to replays, whose clock is the history's
            raise ValueError(f"ab_experiment must not start with {REPLAY_PREFIX!r}: replays name their own experiments")
        return value

    @model_validator(mode="after")
    def _cluster_uses_database_zero(self) -> Settings:
        if self.redis_cluster and urlsplit(self.redis_url).path.strip("/") not in ("", "0"):
            raise ValueError("a Redis Cluster has only database 0: end RECSYS_REDIS_URL with /0 (or no database)")
        return self

    @model_validator(mode="after")
    def _cluster_bus_ports_exist(self) -> Settings:
        if self.redis_cluster and self.redis_port + self.stack_redis_nodes - 1 > CLUSTER_PORT_MAX:
            raise ValueError(f"a Redis Cluster node listens at its port + 10000 too: RECSYS_REDIS_URL's port plus "
                             f"RECSYS_STACK_REDIS_NODES - 1 must be at most {CLUSTER_PORT_MAX}")
        return self

    @field_validator("key_prefix")
    @classmethod
    def _prefix_has_no_separator(cls, value: str) -> str:
        if not value or any(c in value for c in ":{}"):
            raise ValueError("key_prefix must be non-empty and contain no ':', '{' or '}' (a brace would make a Redis "
                             "Cluster hash the wrong part of every key)")
        return value

    @field_validator("event_earliest")
    @classmethod
    def _earliest_is_utc(cls, value: datetime) -> datetime:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    @property
    def event_bounds(self) -> EventBounds:
        return EventBounds(max_units=self.event_max_units, max_amount=self.event_max_amount,
                           max_future=timedelta(seconds=self.event_max_future_s), earliest=self.event_earliest)

    @property
    def api_base_url(self) -> str:
        return self.ui_api_url or f"http://{self.api_host}:{self.api_port}"

    @property
    def archive_location(self) -> str:
        return self.archive_url or str((self.run_dir / "archive").resolve())

    @property
    def broker_host(self) -> str:
        return _host_port(self.broker_url, default_port=9092)[0]

    @property
    def broker_port(self) -> int:
        return _host_port(self.broker_url, default_port=9092)[1]

    @property
    def bootstrap_servers(self) -> str:
        """host:port as kafka-python and aiokafka expect it."""
        return f"{self.broker_host}:{self.broker_port}"

    @property
    def redis_host(self) -> str:
        return _host_port(self.redis_url, default_port=6379)[0]

    @property
    def redis_port(self) -> int:
        return _host_port(self.redis_url, default_port=6379)[1]


def _host_port(url: str, default_port: int) -> tuple[str, int]:
    parts = urlsplit(url if "://" in url else f"tcp://{url}")
    return parts.hostname or "127.0.0.1", parts.port or default_port


@lru_cache
def get_settings() -> Settings:
    return Settings()

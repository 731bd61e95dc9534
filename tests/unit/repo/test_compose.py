"""docker-compose.yml checked as far as this machine allows (no Docker engine or compose plugin here): the
services, images, start order, health checks, what is published and how secrets arrive."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[3]
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]


def test_one_service_per_component_from_the_project_image() -> None:
    assert set(SERVICES) == {"kafka", "redis", "worker", "archiver", "api", "ui", "batch", "replay", "redis-node-1",
                             "redis-node-2", "redis-node-3", "redis-cluster"}
    assert SERVICES["kafka"]["image"].startswith("apache/kafka:")
    assert SERVICES["redis"]["image"].startswith("redis:")
    for name in ("worker", "archiver", "api", "ui", "batch", "replay"):
        assert SERVICES[name]["build"] == "." and SERVICES[name]["command"][0] == "recsys"
    assert SERVICES["replay"]["profiles"] == ["replay"]
    assert (ROOT / "Dockerfile").read_text().count("COPY") >= 9


def test_only_the_api_and_the_ui_are_published_and_on_loopback_by_default() -> None:
    published = {name for name, service in SERVICES.items() if service.get("ports")}
    assert published == {"api", "ui"}
    for name in published:
        (port,) = SERVICES[name]["ports"]
        assert port.startswith("${PUBLISH_ADDRESS:-127.0.0.1}:"), port
    assert "PLAINTEXT://kafka:9092" in SERVICES["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]


def test_redis_requires_a_password_from_a_config_file_and_refuses_writes_when_full() -> None:
    shell = SERVICES["redis"]["command"]
    assert shell[:2] == ["sh", "-c"]
    script = shell[2]
    assert "> /tmp/auth.conf" in script and "exec redis-server /tmp/auth.conf" in script
    server_args = script.split("exec redis-server", 1)[1]
    assert "requirepass" not in server_args and "PASSWORD" not in server_args  # never on the command line
    assert "--maxmemory-policy noeviction" in server_args and "--maxmemory $$REDIS_MAXMEMORY" in server_args
    assert "--zset-max-listpack-value 256" in server_args  # as the local stack: a customer's sorted sets compact
    assert SERVICES["redis"]["environment"]["REDIS_PASSWORD"].startswith("${REDIS_PASSWORD:?")
    assert SERVICES["worker"]["environment"]["RECSYS_REDIS_URL"].startswith("redis://:${REDIS_PASSWORD")


def test_the_api_key_reaches_only_the_api_and_the_ui_password_is_required() -> None:
    holders = {name for name, service in SERVICES.items()
               if "RECSYS_API_KEY" in (service.get("environment") or {})}
    assert holders == {"api"}
    assert SERVICES["ui"]["environment"]["RECSYS_UI_PASSWORD"].startswith("${RECSYS_UI_PASSWORD:?")


def test_state_lives_in_named_volumes_kafka_log_redis_aof_and_the_archive() -> None:
    def mounts(service: str) -> dict[str, str]:
        return {volume.split(":")[0]: volume.split(":")[1] for volume in SERVICES[service].get("volumes", [])}

    assert {"kafka-data", "redis-data", "archive"} <= set(COMPOSE["volumes"])
    assert mounts("kafka")["kafka-data"] == "/var/lib/kafka/data"
    assert mounts("redis")["redis-data"] == "/data"  # the redis image's working dir: AOF and RDB land there
    command = SERVICES["redis"]["command"][2].split()
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--appendfsync") + 1] == "everysec"
    assert command.count("--save") >= 1
    archive_dir = SERVICES["archiver"]["environment"]["RECSYS_ARCHIVE_URL"].split(":-")[1].rstrip("}")
    assert mounts("archiver")["archive"] == archive_dir
    assert mounts("batch")["archive"] == archive_dir  # the nightly run reads the archive too
    assert SERVICES["archiver"]["command"][:2] == ["recsys", "archive"]
    assert SERVICES["archiver"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert "/archive" in (ROOT / "Dockerfile").read_text()  # created for the unprivileged user


def test_start_order_and_health_checks() -> None:
    for name in ("kafka", "redis", "api", "ui"):
        assert SERVICES[name]["healthcheck"]["test"], name
    for name, component in (("worker", "stream"), ("archiver", "archive"), ("batch", "batch")):
        assert SERVICES[name]["healthcheck"]["test"] == ["CMD", "recsys", "health", component]
    for name in ("worker", "api", "batch"):
        assert SERVICES[name]["depends_on"]["kafka"]["condition"] == "service_healthy"
        assert SERVICES[name]["depends_on"]["redis"]["condition"] == "service_healthy"
    assert SERVICES["ui"]["depends_on"]["api"]["condition"] == "service_healthy"


def test_every_variable_compose_reads_is_documented_in_env_example() -> None:
    used = set(re.findall(r"\$\{([A-Z_]+)", (ROOT / "docker-compose.yml").read_text()))
    documented = set(re.findall(r"^([A-Z_]+)=", (ROOT / ".env.example").read_text(), re.MULTILINE))
    assert used <= documented, used - documented


NODES = ("redis-node-1", "redis-node-2", "redis-node-3")


def test_the_cluster_profile_runs_three_masters_from_the_official_image_each_with_its_volume() -> None:
    for name in (*NODES, "redis-cluster"):
        assert SERVICES[name]["profiles"] == ["cluster"] and SERVICES[name]["image"].startswith("redis:")
    for name in NODES:
        server_args = SERVICES[name]["command"][2].split("exec redis-server", 1)[1]
        assert "--cluster-enabled yes" in server_args and "--appendonly yes" in server_args
        assert "--maxmemory-policy noeviction" in server_args and "requirepass" not in server_args
        assert "--zset-max-listpack-value 256" in server_args
        (volume,) = SERVICES[name]["volumes"]
        assert volume == f"{name}:/data" and name in COMPOSE["volumes"]
    formation = SERVICES["redis-cluster"]["command"][2]
    assert "--cluster create" in formation and "--cluster-replicas 0" in formation
    assert "getent hosts redis-node-$$n" in formation and "for n in 1 2 3" in formation
    assert SERVICES["redis-cluster"]["restart"] == "no"
    assert {name: dep["condition"] for name, dep in SERVICES["redis-cluster"]["depends_on"].items()} == dict.fromkeys(
        NODES, "service_healthy")


def test_every_redis_client_can_be_pointed_at_the_cluster_and_waits_for_it_only_there() -> None:
    environment = COMPOSE["x-recsys"]["environment"]
    assert environment["RECSYS_REDIS_URL"].endswith("@${REDIS_HOST:-redis}:6379/0")
    assert environment["RECSYS_REDIS_CLUSTER"] == "${RECSYS_REDIS_CLUSTER:-false}"
    for name in ("worker", "api", "batch"):
        assert SERVICES[name]["environment"]["RECSYS_REDIS_CLUSTER"] == "${RECSYS_REDIS_CLUSTER:-false}"
        assert SERVICES[name]["depends_on"]["redis-cluster"] == {"condition": "service_completed_successfully",
                                                                "required": False}

"""The local stack's saved state: Redis runs with an append-only file (snapshots when asked) under the run folder, and
only an explicit wipe deletes it (never an archive configured elsewhere)."""

from __future__ import annotations

from pathlib import Path

from stack.local import LocalStack, redis_memory_args, redis_persistence_args
from stack.scratch import stack_settings


def test_redis_keeps_an_append_only_file_and_snapshots_only_when_asked(tmp_path: Path) -> None:
    assert redis_persistence_args(stack_settings(tmp_path)) == ["--appendonly", "yes", "--appendfsync", "everysec",
                                                                "--save", ""]  # no snapshots by default
    snapshots = redis_persistence_args(stack_settings(tmp_path, redis_save="3600 1 60 10000",
                                                      redis_appendfsync="always"))
    assert snapshots == ["--appendonly", "yes", "--appendfsync", "always",
                         "--save", "3600", "1", "--save", "60", "10000"]


def test_redis_refuses_writes_when_full_rather_than_evicting_state(tmp_path: Path) -> None:
    assert redis_memory_args(stack_settings(tmp_path)) == ["--maxmemory", "4gb", "--maxmemory-policy", "noeviction",
                                                           "--zset-max-ziplist-value", "256"]
    assert redis_memory_args(stack_settings(tmp_path, redis_maxmemory="512mb"))[1] == "512mb"


def test_wipe_deletes_redis_data_and_the_default_archive_only(tmp_path: Path) -> None:
    default = LocalStack(stack_settings(tmp_path / "run"))
    redis_dir, archive_dir = default.root / "redis", tmp_path / "run" / "archive"
    for folder in (redis_dir, archive_dir / "date=2024-01-01"):
        folder.mkdir(parents=True)
        (folder / "data").write_text("x")
    assert default.state_paths() == [redis_dir, archive_dir.resolve()]
    assert default.wipe() == [redis_dir, archive_dir.resolve()]
    assert not redis_dir.exists() and not archive_dir.exists()
    assert default.wipe() == []

    elsewhere = tmp_path / "shared-archive"
    (elsewhere / "date=2024-01-01").mkdir(parents=True)
    configured = LocalStack(stack_settings(tmp_path / "run", archive_url=str(elsewhere)))
    assert configured.state_paths() == [redis_dir]
    configured.wipe()
    assert (elsewhere / "date=2024-01-01").exists()

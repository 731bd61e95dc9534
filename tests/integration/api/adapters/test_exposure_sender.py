"""The exposure sender outlives its broker: on a stack of its own, the broker goes away after the sender connected
and comes back (the local broker restarts empty); what was published meanwhile is delivered once it is back."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from api.adapters.exposures import Exposure, ExposurePublisher
from common.settings import Settings
from stack import LocalStack
from stack.scratch import stack_settings
from tests.integration.abkit import read_exposures

pytestmark = pytest.mark.integration


@pytest.fixture
def own_stack(tmp_path: Path) -> Iterator[tuple[Settings, LocalStack]]:
    settings = stack_settings(tmp_path / "run")
    local = LocalStack(settings)
    local.up()
    yield settings, local
    local.down()


def _exposure(i: int) -> Exposure:
    return Exposure(f"req-{i}", f"c{i % 7}", "rec-v1", "control", "best_sellers", "v1", ["p1", "p2"],
                    datetime(2026, 1, 1, tzinfo=UTC))


async def _until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


def test_the_sender_reconnects_and_delivers_what_waited(own_stack: tuple[Settings, LocalStack]) -> None:
    settings, local = own_stack

    async def scenario() -> ExposurePublisher:
        publisher = ExposurePublisher(settings.bootstrap_servers, settings.topic_exposures, max_queued=1000)
        await publisher.start()
        try:
            assert await publisher.connected(30)
            for i in range(10):
                publisher.publish(_exposure(i))
            await publisher.flush()
            assert publisher.sent == 10
            local.down(only=["broker"])
            for i in range(10, 20):
                publisher.publish(_exposure(i))
            await _until(lambda: publisher.errors > 0 and not publisher.is_connected, 60, "the failure to be seen")
            assert publisher.running and publisher.last_error
            local.up()
            await _until(lambda: publisher.sent == 20 and publisher.queued == 0, 90, "the queue to drain")
            assert publisher.running and publisher.is_connected and publisher.lost == 0
            return publisher
        finally:
            await publisher.stop()

    asyncio.run(scenario())
    # The restarted broker's log is empty: what it holds is what waited while it was away.
    delivered = asyncio.run(read_exposures(settings, lambda found: len(found) >= 10, polls=50))
    assert sorted(e.request_id for e in delivered) == sorted(f"req-{i}" for i in range(10, 20))

"""A request queues an exposure as a plain tuple; the sender's bytes must be the `ExposureEvent` the stream
worker parses (with the contract's own parser), field for field."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any, cast

from aiokafka.errors import KafkaError

from api.adapters.exposures import RECORD_BYTES, Exposure, ExposurePublisher, linger, records_of
from common.events import MAX_EXPOSURES_PER_RECORD, ExposureEvent, exposure_payloads, parse_event


def test_a_queued_exposure_is_sent_as_the_event_the_stream_parses() -> None:
    shown_at = datetime(2011, 12, 1, 9, 30, 5, 123456, tzinfo=UTC)
    exposure = Exposure("9f" * 16, "12348", "rec-v1", "treatment", "model", "20111209T000000Z",
                        ["85123A", "22423"], shown_at)
    parsed = parse_event(ExposureEvent, exposure.to_bytes(), 4096)
    assert parsed == ExposureEvent(request_id="9f" * 16, customer_id="12348", experiment="rec-v1",
                                   group="treatment", strategy="model", model_version="20111209T000000Z",
                                   product_ids=["85123A", "22423"], event_time=shown_at)


def test_beyond_the_queue_limit_exposures_are_dropped_and_counted() -> None:
    publisher = ExposurePublisher("127.0.0.1:1", "exposures", max_queued=2)
    for i in range(5):
        publisher.publish(Exposure(f"r{i}", "c", "e", "control", "best_sellers", "v", ["p"],
                                   datetime(2024, 1, 1, tzinfo=UTC)))
    assert (publisher.queued, publisher.lost) == (2, 3)


def _exposure(i: int, products: int = 2) -> Exposure:
    return Exposure(f"r{i}", f"c{i}", "rec-v1", "control", "best_sellers", "v1", [f"p{j}" for j in range(products)],
                    datetime(2024, 1, 1, tzinfo=UTC))


def test_exposures_are_gathered_into_records_the_stream_reads_back_in_order() -> None:
    exposures = [_exposure(i) for i in range(130)]
    records = records_of(exposures)
    assert [len(chunk) for chunk, _ in records] == [70, 60]  # about 230 bytes each, 16 KB a record
    assert all(len(chunk) <= MAX_EXPOSURES_PER_RECORD and len(value) <= RECORD_BYTES for chunk, value in records)
    read = [parse_event(ExposureEvent, raw, 4096) for _, value in records
            for raw in cast(list[bytes], exposure_payloads(value, 4096))]
    assert [cast(ExposureEvent, e).request_id for e in read] == [e.request_id for e in exposures]


def test_a_record_stays_near_a_record_batchs_size_and_takes_one_big_exposure_alone() -> None:
    big = _exposure(0, products=900)  # about 6 KB of JSON
    records = records_of([big, big, big, _exposure(1)])
    assert [len(chunk) for chunk, _ in records] == [2, 2]
    assert all(len(value) <= RECORD_BYTES for _, value in records)
    alone = records_of([_exposure(2), _exposure(3, products=3000), _exposure(4)])
    assert [len(chunk) for chunk, _ in alone] == [1, 1, 1] and len(alone[1][1]) > RECORD_BYTES


def test_a_cancel_that_lands_as_the_sender_is_asked_to_hurry_still_cancels_it() -> None:
    async def cancel_as_hurried() -> bool:
        hurry = asyncio.Event()
        lingering = asyncio.create_task(linger(hurry, 5.0))
        await asyncio.sleep(0)  # it waits for the event
        hurry.set()
        lingering.cancel()
        try:
            await lingering
        except asyncio.CancelledError:
            return True
        return False

    assert asyncio.run(cancel_as_hurried())


def test_lingering_ends_when_asked_to_hurry_or_at_its_time() -> None:
    async def lingered(hurried: bool) -> float:
        hurry = asyncio.Event()
        if hurried:
            asyncio.get_running_loop().call_later(0.01, hurry.set)
        started = time.perf_counter()
        await linger(hurry, 2.0 if hurried else 0.05)
        return time.perf_counter() - started

    assert asyncio.run(lingered(hurried=True)) < 1.0
    assert 0.05 <= asyncio.run(lingered(hurried=False)) < 1.0


def test_a_record_of_exactly_record_bytes_is_kept_whole_and_one_byte_more_is_split() -> None:
    first = _exposure(0, products=1000)
    rest = RECORD_BYTES - len(first.to_bytes()) - 3  # '[', ',', ']'
    second = _exposure(1)._replace(request_id="r" * (len("r1") + rest - len(_exposure(1).to_bytes())))
    exact = records_of([first, second])
    assert [len(chunk) for chunk, _ in exact] == [2] and len(exact[0][1]) == RECORD_BYTES
    over = records_of([first, second._replace(request_id=second.request_id + "r")])
    assert [len(chunk) for chunk, _ in over] == [1, 1]


class _OneRecordBatch:
    """A record batch that takes one record, as aiokafka's does when the first already fills it."""

    def __init__(self) -> None:
        self.records = 0

    def append(self, key: bytes | None, value: bytes, timestamp: int | None) -> object | None:
        self.records += 1
        return object() if self.records == 1 else None


class _Producer:
    """Hands out deliveries that end as told, one per record batch, in order."""

    def __init__(self, outcomes: list[BaseException | None]) -> None:
        self.outcomes = outcomes

    def create_batch(self) -> _OneRecordBatch:
        return _OneRecordBatch()

    async def send_batch(self, batch: _OneRecordBatch, topic: str, partition: int) -> asyncio.Future[object]:
        delivery: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        outcome = self.outcomes.pop(0)
        if outcome is None:
            delivery.set_result(object())
        else:
            delivery.set_exception(outcome)
        return delivery


def test_a_delivery_failing_with_any_error_puts_its_exposures_back_and_counts_the_rest_sent() -> None:
    big = [_exposure(i, products=900) for i in range(3)]  # about 6 KB each: two records, two record batches

    async def send() -> tuple[ExposurePublisher, Exception]:
        publisher = ExposurePublisher("127.0.0.1:1", "exposures", max_queued=10)
        for exposure in big:
            publisher.publish(exposure)
        producer = _Producer([None, RuntimeError("the client failed in its own way")])
        try:
            await publisher._send(cast(Any, producer), [0])
        except Exception as exc:
            return publisher, exc
        raise AssertionError("a failed delivery must be raised")

    publisher, raised = asyncio.run(send())
    assert isinstance(raised, KafkaError) and "1 exposures" in str(raised)
    assert (publisher.sent, publisher.queued, publisher.lost) == (2, 1, 0)
    assert publisher._queue[0] is big[2]  # put back at the head, to go first when the sender reconnects

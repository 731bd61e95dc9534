"""A request queues an exposure as a plain tuple; the sender's bytes must be the `ExposureEvent` the stream
worker parses (with the contract's own parser), field for field."""

from __future__ import annotations

from datetime import UTC, datetime

from api.adapters.exposures import Exposure, ExposurePublisher
from common.events import ExposureEvent, parse_event


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

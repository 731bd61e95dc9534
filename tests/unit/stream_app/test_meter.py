from stream_app.meter import RateMeter, freshness_summary, lag


def test_rate_meter() -> None:
    now = [0.0]
    meter = RateMeter(window_s=10, clock=lambda: now[0])
    for _ in range(5):
        meter.add(100)
        now[0] += 1
    assert meter.rate == 100.0


def test_lag_sums_partitions_and_admits_unknown() -> None:
    assert lag({"p0": 10, "p1": 5}, {"p0": 4, "p1": 4}) == 5 + 0
    assert lag({"p0": None}, {"p0": 4}) is None


def test_freshness_summary() -> None:
    summary = freshness_summary([float(i) for i in range(1, 101)])
    assert summary == {"freshness_p50_ms": 50.5, "freshness_p99_ms": 100.0}

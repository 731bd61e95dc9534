from pathlib import Path

from common.data import load_history, load_mapping
from common.events import CustomerProfile, ProductInfo, SourceReport, parse_event
from producers.master_data import product_events, profile_events, source_report


def test_profiles_from_the_cleaned_customers_table(fixtures: Path) -> None:
    loaded = load_history(fixtures / "case_study_lines.csv", load_mapping("case_study"),
                          fixtures / "case_study_customers.csv")
    invalid: dict[str, int] = {}
    profiles = {p.customer_id: p for p in profile_events(loaded.customers, invalid)}
    assert invalid == {}
    assert set(profiles) == {"a" * 32, "b" * 32, "c" * 32}
    a = profiles["a" * 32]
    assert (a.region, a.city, a.gender, str(a.birth_date)) == ("Antioquia", "Medellín", "F", "1984-05-03")
    assert profiles["b" * 32].birth_date is None and profiles["b" * 32].gender == "M"
    assert profiles["c" * 32].gender is None
    # What the stream parses is what was sent.
    assert parse_event(CustomerProfile, a.to_bytes(), 4096) == a


def test_rows_that_are_not_valid_records_are_counted_not_sent(fixtures: Path) -> None:
    loaded = load_history(fixtures / "uci_small.csv", load_mapping("uci"))
    customers = loaded.customers.copy()
    customers.loc[0, "customer_id"] = "has spaces"
    invalid: dict[str, int] = {}
    sent = list(profile_events(customers, invalid))
    assert len(sent) == len(customers) - 1 and invalid == {"profile: customer_id": 1}
    assert loaded.products is not None
    products = list(product_events(loaded.products, invalid))
    assert [p.product_id for p in products] == list(loaded.products["product_id"])
    assert all(isinstance(p, ProductInfo) and p.name for p in products)


def test_the_source_report_carries_the_files_cleaning_report(fixtures: Path) -> None:
    loaded = load_history(fixtures / "uci_small.csv", load_mapping("uci"))
    report = source_report(loaded, {"lines": 4})
    parsed = parse_event(SourceReport, report.to_bytes(), 1 << 20)
    assert isinstance(parsed, SourceReport)
    assert parsed.cleaning["removed"] == loaded.report.removed and parsed.cleaning["raw_rows"] == 12
    assert parsed.replayed == {"lines": 4} and parsed.source.endswith("uci_small.csv")

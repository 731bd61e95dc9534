from pathlib import Path

import pytest

from common.data import DataError, load_history, load_mapping


def test_presets_load() -> None:
    assert load_mapping("case_study").transactions.customer == "UUID_CLIENTE_CONSUMIDOR"
    assert load_mapping("uci").transactions.unit_price == "UnitPrice"


def test_unknown_preset() -> None:
    with pytest.raises(DataError, match="unknown preset 'nope'"):
        load_mapping("nope")


def test_mapping_file_for_any_schema(tmp_path: Path) -> None:
    mapping = tmp_path / "shop.toml"
    mapping.write_text(
        'name = "shop"\n[transactions]\ncustomer = "user"\norder = "basket"\nproduct = "sku"\n'
        'event_time = "ts"\nunits = "qty"\namount = "total"\ncategory = "dept"\n'
    )
    data = tmp_path / "shop.csv"
    data.write_text(
        "user,basket,sku,ts,qty,total,dept\n"
        "u1,b1,s1,2024-01-01T10:00:00,1,9.5,toys\n"
        "u1,b1,s2,2024-01-01T10:00:00,2,3.0,toys\n"
        "u2,b2,s1,2024-01-02T10:00:00,1.5,9.5,toys\n"
    )
    loaded = load_history(data, load_mapping(mapping_file=mapping))
    assert loaded.report.kept_rows == 2
    assert loaded.report.removed["fractional_units"] == 1
    assert list(loaded.lines["amount"]) == [9.5, 3.0]


def test_mapping_needs_exactly_one_money_column(tmp_path: Path) -> None:
    mapping = tmp_path / "bad.toml"
    mapping.write_text(
        'name = "bad"\n[transactions]\ncustomer = "c"\norder = "o"\nproduct = "p"\nevent_time = "t"\nunits = "u"\n'
    )
    with pytest.raises(DataError, match="exactly one of 'amount'"):
        load_mapping(mapping_file=mapping)


def test_mapping_with_unknown_key(tmp_path: Path) -> None:
    mapping = tmp_path / "bad.toml"
    mapping.write_text('name = "bad"\nsurprise = 1\n[transactions]\ncustomer = "c"\n')
    with pytest.raises(DataError, match="surprise"):
        load_mapping(mapping_file=mapping)


def test_mapping_file_missing(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cannot read mapping file"):
        load_mapping(mapping_file=tmp_path / "none.toml")

from pathlib import Path

import pandas as pd
import pytest

from common.data import DataError, load_history, load_mapping
from common.events import EventBounds


def test_uci_fixture_counts_every_removed_row_by_reason(fixtures: Path) -> None:
    loaded = load_history(fixtures / "uci_small.csv", load_mapping("uci"))
    assert loaded.report.currency == "GBP"  # the mapping's: amounts are written in pounds
    report = loaded.report

    assert report.raw_rows == 12
    assert report.kept_rows == 4 == len(loaded.lines)
    assert report.removed == {
        "missing_customer": 1,
        "cancellation": 1,
        "non_positive_units": 1,
        "non_positive_amount": 1,
        "missing_value": 0,
        "unparseable_number": 1,
        "unparseable_date": 1,
        "fractional_units": 0,
        "units_above_limit": 0,
        "amount_above_limit": 0,
        "event_time_out_of_range": 0,
        "non_product_code": 1,
        "duplicate": 1,
    }
    assert report.reconciles
    assert report.kept_after["non_positive_amount"] == 8


def test_uci_fixture_canonical_values(fixtures: Path) -> None:
    lines = load_history(fixtures / "uci_small.csv", load_mapping("uci")).lines

    assert list(lines["customer_id"]) == ["17850", "17850", "13047", "13047"]
    assert list(lines["product_id"]) == ["85123A", "71053", "85123A", "21730"]
    assert list(lines["amount"]) == [15.30, 20.34, 5.10, 17.00]
    assert list(lines["line_no"]) == [0, 1, 0, 0]
    assert lines["product_name"].iloc[3] == "21730"  # no description: the code stands in
    assert lines["event_time"].iloc[0] == pd.Timestamp("2010-12-01 08:26:00")


def test_uci_customers_come_from_transactions(fixtures: Path) -> None:
    customers = load_history(fixtures / "uci_small.csv", load_mapping("uci")).customers
    assert set(customers["customer_id"]) == {"17850", "13047"}
    assert set(customers["region"]) == {"United Kingdom"}


def test_case_study_two_tables(fixtures: Path) -> None:
    loaded = load_history(
        fixtures / "case_study_lines.csv", load_mapping("case_study"), fixtures / "case_study_customers.csv"
    )
    report = loaded.report

    assert report.raw_rows == 9
    assert {k: v for k, v in report.removed.items() if v} == {
        "missing_customer": 1,
        "non_positive_units": 1,
        "unparseable_date": 1,
        "duplicate": 1,
        "unknown_customer": 1,
    }
    assert report.kept_rows == 4 and report.reconciles
    assert report.filled == {"category_unknown": 1}
    assert list(loaded.lines["category"]) == ["Galletas", "Esparcibles", "unknown", "Galletas"]
    assert report.customers["rows"] == 5
    assert report.customers["duplicate_rows"] == 2
    assert report.customers["missing_birth_date"] == 1
    assert report.customers["implausible_age"] == 1

    customers = loaded.customers.set_index("customer_id")
    assert customers.loc["a" * 32, "age"] == 38  # born 1984-05-03, last event 2023-03-02
    assert customers["age"].isna()["c" * 32]  # born 1890: not a plausible age
    assert customers.loc["b" * 32, "gender"] == "M"


def test_folder_path_uses_the_preset_file_names(tmp_path: Path, fixtures: Path) -> None:
    (tmp_path / "dataset_sample_1.csv").write_bytes((fixtures / "case_study_lines.csv").read_bytes())
    (tmp_path / "dataset_sample_2.csv").write_bytes((fixtures / "case_study_customers.csv").read_bytes())
    loaded = load_history(tmp_path, load_mapping("case_study"))
    assert loaded.report.removed["unknown_customer"] == 1


def test_parquet_input(tmp_path: Path, fixtures: Path) -> None:
    frame = pd.read_csv(fixtures / "uci_small.csv", dtype={"InvoiceNo": str, "StockCode": str})
    frame.to_parquet(tmp_path / "retail.parquet")
    loaded = load_history(tmp_path / "retail.parquet", load_mapping("uci"))
    assert loaded.report.kept_rows == 4


def test_missing_column_names_the_column_and_file(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("UUID_CLIENTE_CONSUMIDOR,PEDIDO,FECHA_SOLUCION,COD_PRODUCTO,UNIDADES_BRUTAS\nx,1,2023-01-01,2,1\n")
    with pytest.raises(DataError, match=r"t\.csv: missing column\(s\) 'VENTA_BRUTA_CON_IVA', 'CATEGORIA'"):
        load_history(path, load_mapping("case_study"))


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"transactions file not found: .*nope\.csv"):
        load_history(tmp_path / "nope.csv", load_mapping("uci"))


def test_unreadable_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.csv.gz"
    path.write_bytes(b"this is not gzip")
    with pytest.raises(DataError, match=r"cannot read transactions file .*broken\.csv\.gz"):
        load_history(path, load_mapping("uci"))


def test_the_two_tables_are_checked_against_each_other(fixtures: Path) -> None:
    loaded = load_history(
        fixtures / "case_study_lines.csv", load_mapping("case_study"), fixtures / "case_study_customers.csv"
    )
    # d bought (its line is removed as unknown_customer) but has no profile; a, b and c all have purchases.
    assert loaded.report.customers["purchasing_without_profile"] == 1
    assert loaded.report.customers["profiles_without_purchases"] == 0
    assert loaded.report.customers["with_purchases"] == 3


def test_a_products_table_names_the_products_and_fills_missing_categories(tmp_path: Path, fixtures: Path) -> None:
    (tmp_path / "dataset_sample_1.csv").write_bytes((fixtures / "case_study_lines.csv").read_bytes())
    (tmp_path / "dataset_sample_2.csv").write_bytes((fixtures / "case_study_customers.csv").read_bytes())
    (tmp_path / "products.csv").write_text("COD_PRODUCTO,NOMBRE_PRODUCTO,CATEGORIA\n101,Galletas 1,Galletas\n"
                                           "202,Esparcibles 1,Esparcibles\n202,Esparcibles 1b,Esparcibles\n"
                                           "999,Never Sold,Aguas\n")
    loaded = load_history(tmp_path, load_mapping("case_study"))
    assert list(loaded.lines["product_name"]) == ["Galletas 1", "Esparcibles 1b", "Galletas 1", "Galletas 1"]
    assert list(loaded.lines["category"]) == ["Galletas", "Esparcibles", "Galletas", "Galletas"]
    assert loaded.report.filled == {"category_from_products_table": 1, "category_unknown": 0}
    assert loaded.report.products == {"rows": 4, "missing_id": 0, "duplicate_rows": 1, "missing_name": 0}
    assert loaded.products is not None
    assert loaded.products.set_index("product_id")["name"].to_dict() == {
        "101": "Galletas 1", "202": "Esparcibles 1b", "999": "Never Sold"}


def test_without_a_products_table_the_catalogue_comes_from_the_lines(fixtures: Path) -> None:
    loaded = load_history(fixtures / "uci_small.csv", load_mapping("uci"))
    assert loaded.products is not None
    catalogue = loaded.products.set_index("product_id")
    names = loaded.lines.loc[loaded.lines["product_id"] == "85123A", "product_name"]
    assert catalogue.loc["85123A", "name"] == names.iloc[-1]  # the latest name the product was sold under
    assert catalogue.loc["21730", "name"] == "21730"  # no description: the code stands in


def test_lines_the_stream_would_refuse_are_counted_and_never_replayed(tmp_path: Path) -> None:
    header = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
    rows = ["1,85123A,a,2,2011-01-01 10:00:00,1.5,1.0,UK",
            "2,85123A,a,1000000000000000000000000000000,2011-01-01 10:00:00,1.5,1.0,UK",  # units 10^30
            "3,85123A,a,2,2011-01-01 10:00:00,1e300,1.0,UK",  # amount 2e300
            "4,85123A,a,2,9999-12-31 00:00:00,1.5,1.0,UK",
            "5,85123A,a,2,1990-01-01 00:00:00,1.5,1.0,UK",  # before the default floor
            "6,85123A,a,5,2011-01-01 10:00:00,1.5,1.0,UK"]
    path = tmp_path / "t.csv"
    path.write_text(header + "\n".join(rows) + "\n")
    loaded = load_history(path, load_mapping("uci"))
    removed = loaded.report.removed
    bounds_removed = [removed[r] for r in ("units_above_limit", "amount_above_limit", "event_time_out_of_range")]
    assert bounds_removed == [1, 1, 2]
    assert list(loaded.lines["order_id"]) == ["1", "6"] and loaded.report.reconciles

    older = load_history(path, load_mapping("uci"), bounds=EventBounds(earliest=pd.Timestamp("1980-01-01", tz="UTC")))
    assert older.report.removed["event_time_out_of_range"] == 1  # a replay of older history lowers the floor

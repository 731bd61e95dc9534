"""Read a source table, map it onto the canonical schema, and clean it with every removal counted by reason."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from common.data.catalogue import clean_product_table, names_of, product_catalogue, products_path
from common.data.errors import DataError
from common.data.mapping import ColumnMapping, CustomerColumns, TransactionColumns
from common.data.membership import is_in
from common.data.report import CleaningReport
from common.events import EventBounds
from common.profiles import MAX_AGE, MIN_AGE

# The canonical purchase-line table every component works on.
LINE_COLUMNS = [
    "customer_id", "order_id", "line_no", "product_id", "product_name", "category",
    "units", "amount", "event_time",
]
CUSTOMER_COLUMNS = ["customer_id", "region", "city", "gender", "birth_date", "age"]
UNKNOWN_CATEGORY = "unknown"
UNKNOWN_CUSTOMER = "unknown_customer"

Mask = np.ndarray
Rule = Callable[[Mask], Mask]


@dataclass(frozen=True)
class DataOrigin:
    """Where a history was read from (the model card shows it): `kind` is file, topic, archive or archive+topic;
    `counts` says how many lines came from where."""

    kind: str
    location: str
    counts: dict[str, int] = dataclass_field(default_factory=dict)


@dataclass
class LoadedData:
    lines: pd.DataFrame
    customers: pd.DataFrame
    report: CleaningReport
    products: pd.DataFrame | None = None  # the catalogue: product_id, name, category
    # Cleaning reports of the source files as recorded when they were replayed (read from the topic).
    source_reports: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    origin: DataOrigin | None = None


def resolve_paths(path: Path, mapping: ColumnMapping, customers: Path | None) -> tuple[Path, Path | None]:
    """PATH may be the transactions file itself or a folder holding the preset's file names."""
    if path.is_dir():
        if mapping.transactions_file is None:
            raise DataError(f"{path} is a folder and mapping '{mapping.name}' names no transactions_file")
        transactions = path / mapping.transactions_file
        if customers is None and mapping.customers_file is not None and (path / mapping.customers_file).exists():
            customers = path / mapping.customers_file
        return transactions, customers
    return path, customers


def load_history(path: Path, mapping: ColumnMapping, customers_path: Path | None = None,
                 bounds: EventBounds | None = None) -> LoadedData:
    """A history file, cleaned: each removed row counted under the first rule it breaks. `bounds` are the
    contract's limits on a line (default: `EventBounds()`), so nothing the stream would refuse is replayed."""
    transactions_path, customers_path = resolve_paths(path, mapping, customers_path)
    cols = mapping.transactions
    raw = read_table(transactions_path, cols.source_columns(), "transactions")
    canon = _canonical_lines(raw, cols)

    known: pd.DataFrame | None = None
    customers_summary: dict[str, int] = {}
    if customers_path is not None:
        if mapping.customers is None:
            raise DataError(f"mapping '{mapping.name}' has no [customers] section for {customers_path}")
        reference = canon["event_time"].max()
        known, customers_summary = load_customers(customers_path, mapping.customers, reference)

    rules = _cleaning_rules(raw, canon, cols, known, bounds or EventBounds())
    report = CleaningReport(source=str(transactions_path), mapping=mapping.name, raw_rows=len(raw),
                            currency=mapping.currency)
    alive = np.ones(len(raw), dtype=bool)
    orphans = np.zeros(len(raw), dtype=bool)  # lines removed because their customer has no profile
    for reason, rule in rules:
        hit = alive & rule(alive)
        alive &= ~hit
        report.record(reason, removed=int(hit.sum()), kept=int(alive.sum()))
        if reason == UNKNOWN_CUSTOMER:
            orphans = hit

    # The raw text and the unfiltered frame are dropped as soon as the rules are done: at 10M lines each is
    # over a GiB, and holding them through the sort below set the run's peak memory.
    del rules, rule, raw
    kept = canon[alive]
    orphan_ids = canon.loc[orphans, "customer_id"] if known is not None else None
    del canon
    table = _product_table(transactions_path, mapping, report)
    if known is None:
        known = _customers_from_lines(kept)
    lines = _finish_lines(kept, report, table)
    del kept
    if table is not None and cols.product_name is None:
        lines["product_name"] = lines["product_id"].map(names_of(table)).fillna(lines["product_id"]).astype("string")
    if orphan_ids is not None:
        customers_summary |= consistency(orphan_ids, known["customer_id"], lines)
    customers_summary["with_purchases"] = int(is_in(known["customer_id"], lines["customer_id"]).sum())
    report.customers = customers_summary | {"rows": customers_summary.get("rows", len(known))}
    return LoadedData(lines=lines, customers=known, report=report, products=product_catalogue(lines, table),
                      origin=DataOrigin("file", str(transactions_path), {"lines": len(lines)}))


def consistency(orphans: pd.Series, profiles: pd.Series, lines: pd.DataFrame) -> dict[str, int]:
    """The two tables against each other: customers whose purchases have no profile (their lines are removed as
    unknown_customer) and profiles of customers with no purchase."""
    return {"purchasing_without_profile": int(orphans.nunique()),
            "profiles_without_purchases": int((~is_in(profiles, lines["customer_id"])).sum())}


def _product_table(transactions: Path, mapping: ColumnMapping, report: CleaningReport) -> pd.DataFrame | None:
    path = products_path(transactions.parent, mapping.products_file)
    if path is None or mapping.products is None:
        return None
    raw = read_table(path, mapping.products.source_columns(), "products")
    table, summary = clean_product_table(raw, mapping.products, mapping.transactions.uppercase_product)
    report.products = summary
    return table


def read_table(path: Path, columns: list[str], label: str) -> pd.DataFrame:
    """Every mapped column as text, so a bad value is counted by the cleaning rules instead of failing the read."""
    if not path.is_file():
        raise DataError(f"{label} file not found: {path}")
    try:
        if path.suffix == ".parquet":
            frame = pd.read_parquet(path)
            _require_columns(path, list(frame.columns), columns)
            return frame[columns].astype("string")
        header = pd.read_csv(path, nrows=0)
        _require_columns(path, list(header.columns), columns)
        return pd.read_csv(path, usecols=columns, dtype="string", keep_default_na=True)[columns]
    except DataError:
        raise
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise DataError(f"cannot read {label} file {path}: {exc}") from exc


def _require_columns(path: Path, present: list[str], wanted: list[str]) -> None:
    missing = [c for c in wanted if c not in present]
    if missing:
        raise DataError(
            f"{path}: missing column(s) {', '.join(repr(m) for m in missing)}; "
            f"the file has {', '.join(present[:20])}. Check --preset or the mapping file."
        )


def _clean_text(series: pd.Series) -> pd.Series:
    stripped = series.str.strip()
    return stripped.mask(stripped == "")


def _clean_id(series: pd.Series) -> pd.Series:
    # Numeric ids read from floats arrive as "17850.0".
    return _clean_text(series).str.replace(r"^(\d+)\.0+$", r"\1", regex=True)


def parse_times(series: pd.Series, fmt: str) -> pd.Series:
    """Naive times are UTC; aware ones are converted to UTC. Unparseable -> NaT. A date outside what nanoseconds
    hold (1677..2262, e.g. 9999-12-31) is pinned to that range's edge, so the bounds rule counts it rather than the
    cast failing the whole load."""
    parsed = pd.to_datetime(series, format=fmt, errors="coerce", utc=True).dt.tz_localize(None)
    edges = pd.Series([pd.Timestamp.min.ceil("s"), pd.Timestamp.max.floor("s")]).astype(parsed.dtype)
    return parsed.clip(edges[0], edges[1]).astype("datetime64[ns]")


def _canonical_lines(raw: pd.DataFrame, cols: TransactionColumns) -> pd.DataFrame:
    product = _clean_id(raw[cols.product])
    if cols.uppercase_product:
        product = product.str.upper()
    units = pd.to_numeric(raw[cols.units], errors="coerce").astype("float64")
    money_col = cols.amount or cols.unit_price
    assert money_col is not None
    money = pd.to_numeric(raw[money_col], errors="coerce").astype("float64")
    amount = money if cols.amount else units * money
    return pd.DataFrame(
        {
            "customer_id": _clean_id(raw[cols.customer]),
            "order_id": _clean_id(raw[cols.order]),
            "product_id": product,
            "product_name": _clean_text(raw[cols.product_name]) if cols.product_name else product,
            "category": _clean_text(raw[cols.category]) if cols.category else pd.NA,
            "units": units,
            "amount": amount,
            "event_time": parse_times(raw[cols.event_time], cols.date_format),
            "region": _clean_text(raw[cols.region]) if cols.region else pd.NA,
        }
    )


def _cleaning_rules(
    raw: pd.DataFrame, canon: pd.DataFrame, cols: TransactionColumns, known: pd.DataFrame | None,
    bounds: EventBounds,
) -> list[tuple[str, Rule]]:
    """Ordered rules; a row is counted under the first one it breaks. The first four on UCI data are the
    customer/cancellation/quantity/price rules of the usual clean subset."""
    required_raw = [cols.order, cols.product, cols.units, cols.event_time, cols.amount or cols.unit_price]
    units = canon["units"].to_numpy()
    amount = canon["amount"].to_numpy()

    rules: list[tuple[str, Rule]] = [
        ("missing_customer", _constant(canon["customer_id"].isna().to_numpy())),
    ]
    if cols.cancelled_order_prefix:
        prefix = cols.cancelled_order_prefix
        rules.append(("cancellation", _constant(canon["order_id"].str.startswith(prefix).fillna(False).to_numpy())))
    rules += [
        ("non_positive_units", _constant(units <= 0)),
        ("non_positive_amount", _constant(amount <= 0)),
        ("missing_value", _constant(raw[required_raw].isna().any(axis=1).to_numpy()
                                | canon[["order_id", "product_id"]].isna().any(axis=1).to_numpy())),
        ("unparseable_number", _constant(~np.isfinite(units) | ~np.isfinite(amount))),
        ("unparseable_date", _constant(canon["event_time"].isna().to_numpy())),
        ("fractional_units", _constant(np.isfinite(units) & (units != np.floor(units)))),
        *_bound_rules(canon, bounds),
    ]
    if cols.product_code_pattern:
        pattern = cols.product_code_pattern
        rules.append(("non_product_code", _constant(~canon["product_id"].str.match(pattern).fillna(False).to_numpy())))
    rules.append(("duplicate", lambda alive: _duplicates_among(raw, alive)))
    if known is not None:
        rules.append((UNKNOWN_CUSTOMER, _constant(~is_in(canon["customer_id"], known["customer_id"]))))
    return rules


def _bound_rules(canon: pd.DataFrame, bounds: EventBounds) -> list[tuple[str, Rule]]:
    """The contract's limits on one line (common.events.EventBounds), with the clock of the moment of loading."""
    latest = pd.Timestamp(datetime.now(UTC) + bounds.max_future).tz_localize(None)
    earliest = pd.Timestamp(bounds.earliest).tz_localize(None)
    times = canon["event_time"]
    masks = {
        "units_above_limit": (canon["units"] > bounds.max_units).to_numpy(),
        "amount_above_limit": (canon["amount"] > bounds.max_amount).to_numpy(),
        "event_time_out_of_range": ((times > latest) | (times < earliest)).fillna(False).to_numpy(),
    }
    return [(reason, _constant(mask)) for reason, mask in masks.items()]


def _constant(mask: Mask) -> Rule:
    """A rule whose rows do not depend on which rows are still alive."""
    return lambda _alive: mask


def _duplicates_among(raw: pd.DataFrame, alive: Mask) -> Mask:
    """Exact copies of an earlier surviving row (the first copy is kept)."""
    dup = np.zeros(len(raw), dtype=bool)
    dup[alive] = raw[alive].duplicated(keep="first").to_numpy()
    return dup


def _finish_lines(kept: pd.DataFrame, report: CleaningReport, table: pd.DataFrame | None = None) -> pd.DataFrame:
    """A line's missing category comes from the products table when there is one, else it is 'unknown'."""
    lines = kept
    missing_category = lines["category"].isna()
    if table is not None and table["category"].notna().any():
        known = lines["product_id"].map(pd.Series(table["category"].to_numpy(), index=table["product_id"].to_numpy()))
        report.filled["category_from_products_table"] = int((missing_category & known.notna()).sum())
        lines["category"] = lines["category"].fillna(known)
        missing_category = lines["category"].isna()
    report.filled["category_unknown"] = int(missing_category.sum())
    lines["category"] = lines["category"].fillna(UNKNOWN_CATEGORY).astype("string")
    lines["product_name"] = lines["product_name"].fillna(lines["product_id"]).astype("string")
    lines["units"] = lines["units"].astype("int64")
    lines["amount"] = lines["amount"].round(2)
    # Event-time order; ties keep the file's order so line numbers (and event ids) are stable across runs.
    lines = lines.sort_values(["event_time", "order_id"], kind="stable").reset_index(drop=True)
    lines["line_no"] = lines.groupby("order_id", sort=False).cumcount().astype("int64")
    return lines[LINE_COLUMNS]


def load_customers(
    path: Path, cols: CustomerColumns, reference: pd.Timestamp
) -> tuple[pd.DataFrame, dict[str, int]]:
    """One row per customer, age in whole years at the data's last event date."""
    raw = read_table(path, cols.source_columns(), "customers")
    frame = pd.DataFrame({"customer_id": _clean_id(raw[cols.customer])})
    for field in ("region", "city", "gender", "birth_date"):
        source = getattr(cols, field)
        frame[field] = _clean_text(raw[source]) if source else pd.NA
    frame["gender"] = frame["gender"].str.upper().where(frame["gender"].str.upper().isin(["F", "M"]))
    summary = {"rows": len(frame), "missing_id": int(frame["customer_id"].isna().sum())}
    frame = frame.dropna(subset=["customer_id"])
    summary["duplicate_rows"] = int(frame.duplicated("customer_id").sum())
    frame = frame.drop_duplicates("customer_id", keep="first").reset_index(drop=True)

    summary["missing_birth_date"] = int(frame["birth_date"].isna().sum())
    birth = parse_times(frame["birth_date"].astype("string"), "ISO8601")
    frame["birth_date"] = birth
    frame["age"] = ages_at(birth, reference)
    summary["implausible_age"] = int((birth.notna() & frame["age"].isna()).sum())
    summary["distinct"] = len(frame)
    return frame[CUSTOMER_COLUMNS], summary


def ages_at(birth: pd.Series, reference: pd.Timestamp) -> pd.Series:
    """Whole years at `reference`; an implausible age (outside MIN_AGE..MAX_AGE) is missing."""
    age = _age_in_years(birth, reference)
    return age.where(age.between(MIN_AGE, MAX_AGE)).astype("Int64")


def _age_in_years(birth: pd.Series, reference: pd.Timestamp) -> pd.Series:
    if pd.isna(reference):
        return pd.Series(pd.NA, index=birth.index, dtype="Float64")
    years = reference.year - birth.dt.year
    before_birthday = (birth.dt.month > reference.month) | (
        (birth.dt.month == reference.month) & (birth.dt.day > reference.day)
    )
    age: pd.Series = (years - before_birthday.astype("float64")).astype("Float64")
    return age


def _customers_from_lines(lines: pd.DataFrame) -> pd.DataFrame:
    first = lines.drop_duplicates("customer_id", keep="first")
    return pd.DataFrame(
        {
            "customer_id": first["customer_id"].to_numpy(),
            "region": first["region"].to_numpy(),
            "city": pd.NA,
            "gender": pd.NA,
            "birth_date": pd.NaT,
            "age": pd.array([pd.NA] * len(first), dtype="Int64"),
        }
    )[CUSTOMER_COLUMNS]

"""The product catalogue (id, name, category): from a products table when the source has one, otherwise from the
purchase lines themselves (the most recent name and category each product was sold under)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from common.data.mapping import ProductColumns

CATALOGUE_COLUMNS = ["product_id", "name", "category"]


def clean_product_table(raw: pd.DataFrame, cols: ProductColumns,
                        uppercase: bool) -> tuple[pd.DataFrame, dict[str, int]]:
    """One row per product code, blank names and categories as missing; counts of what was dropped."""
    product = _text(raw[cols.product]).str.replace(r"^(\d+)\.0+$", r"\1", regex=True)
    frame = pd.DataFrame({
        "product_id": product.str.upper() if uppercase else product,
        "name": _text(raw[cols.name]),
        "category": _text(raw[cols.category]) if cols.category else pd.Series(pd.NA, index=raw.index, dtype="string"),
    })
    summary = {"rows": len(frame), "missing_id": int(frame["product_id"].isna().sum())}
    frame = frame.dropna(subset=["product_id"])
    summary["duplicate_rows"] = int(frame.duplicated("product_id").sum())
    frame = frame.drop_duplicates("product_id", keep="last").reset_index(drop=True)
    summary["missing_name"] = int(frame["name"].isna().sum())
    return frame[CATALOGUE_COLUMNS], summary


def product_catalogue(lines: pd.DataFrame, table: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every product the lines or the table know, the table's name and category first; a product without a name
    is named by its id."""
    latest = lines.drop_duplicates("product_id", keep="last")
    from_lines = pd.DataFrame({"product_id": latest["product_id"].astype("string").to_numpy(),
                               "name": latest["product_name"].astype("string").to_numpy(),
                               "category": latest["category"].astype("string").to_numpy()})
    if table is None or table.empty:
        merged = from_lines
    else:
        merged = table.astype("string").merge(from_lines, on="product_id", how="outer", suffixes=("", "_lines"))
        for column in ("name", "category"):
            merged[column] = merged[column].fillna(merged[f"{column}_lines"])
    merged["name"] = merged["name"].fillna(merged["product_id"])
    merged["category"] = merged["category"].fillna("")
    return merged[CATALOGUE_COLUMNS].sort_values("product_id", kind="stable").reset_index(drop=True)


def names_of(catalogue: pd.DataFrame) -> pd.Series:
    """product id -> name."""
    return pd.Series(catalogue["name"].to_numpy(), index=catalogue["product_id"].to_numpy())


def _text(series: pd.Series) -> pd.Series:
    stripped = series.astype("string").str.strip()
    return stripped.mask(stripped == "")


def products_path(folder: Path, file_name: str | None) -> Path | None:
    """The preset's products table beside the transactions, if it is there."""
    if file_name is None or not (folder / file_name).is_file():
        return None
    return folder / file_name

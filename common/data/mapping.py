"""Column mappings: how a source schema maps onto the canonical purchase-line table."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from common.data.errors import DataError


class TransactionColumns(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer: str
    order: str
    product: str
    event_time: str
    units: str
    amount: str | None = None
    unit_price: str | None = None
    category: str | None = None
    product_name: str | None = None
    region: str | None = None
    date_format: str = "ISO8601"
    cancelled_order_prefix: str | None = None
    product_code_pattern: str | None = None
    uppercase_product: bool = False

    @model_validator(mode="after")
    def _one_money_column(self) -> TransactionColumns:
        if (self.amount is None) == (self.unit_price is None):
            raise ValueError("give exactly one of 'amount' (line total) or 'unit_price' (amount = units x price)")
        return self

    def source_columns(self) -> list[str]:
        names = [self.customer, self.order, self.product, self.event_time, self.units]
        optional = [self.amount, self.unit_price, self.category, self.product_name, self.region]
        return names + [n for n in optional if n is not None]


class CustomerColumns(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer: str
    region: str | None = None
    city: str | None = None
    gender: str | None = None
    birth_date: str | None = None

    def source_columns(self) -> list[str]:
        optional = [self.region, self.city, self.gender, self.birth_date]
        return [self.customer] + [n for n in optional if n is not None]


class ProductColumns(BaseModel):
    """An optional product catalogue table: names (and categories) for the codes the transactions use."""

    model_config = ConfigDict(extra="forbid")

    product: str
    name: str
    category: str | None = None

    def source_columns(self) -> list[str]:
        return [self.product, self.name] + ([self.category] if self.category else [])


class ColumnMapping(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    currency: str = Field(default="COP", pattern=r"^[A-Z]{3}$")  # ISO 4217: how the live view writes amounts
    transactions_file: str | None = None
    customers_file: str | None = None
    products_file: str | None = None
    transactions: TransactionColumns
    customers: CustomerColumns | None = None
    products: ProductColumns | None = None


PRESETS = ("case_study", "uci")


def load_mapping(preset: str | None = None, mapping_file: Path | None = None) -> ColumnMapping:
    """A built-in preset by name, or a mapping file (TOML) for any other schema."""
    if mapping_file is not None:
        try:
            text = mapping_file.read_text()
        except OSError as exc:
            raise DataError(f"cannot read mapping file {mapping_file}: {exc.strerror}") from exc
        return _parse(text, str(mapping_file))
    name = preset or "case_study"
    if name not in PRESETS:
        raise DataError(f"unknown preset '{name}'; choose one of {', '.join(PRESETS)} or pass --mapping FILE")
    text = resources.files("common").joinpath("presets", f"{name}.toml").read_text()
    return _parse(text, f"preset {name}")


def _parse(text: str, origin: str) -> ColumnMapping:
    try:
        return ColumnMapping.model_validate(tomllib.loads(text))
    except tomllib.TOMLDecodeError as exc:
        raise DataError(f"{origin} is not valid TOML: {exc}") from exc
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'mapping'}: {e['msg']}" for e in exc.errors(include_url=False)
        )
        raise DataError(f"{origin} is not a valid column mapping: {problems}") from exc

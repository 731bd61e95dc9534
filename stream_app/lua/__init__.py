"""The stream's Redis scripts. The Lua lives in this folder; each script is its shared parts plus its own file,
preceded by the tables that name the fields of the rows Python sends, so both sides use one definition."""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources

# One purchase row of the purchases script's JSON argument, in order (`stream_app.state.purchase_row` builds it).
PURCHASE_FIELDS = ("event_id", "order_id", "product_id", "category", "units", "cents", "ts", "latest")
# One exposure row of the exposures script's JSON argument, in order.
EXPOSURE_FIELDS = ("request_id", "customer_id", "group", "ts", "product_ids", "propensity")  # propensity 0: none
# A customer's stored units and cents stay below this: the purchases script refuses a batch's events of a customer
# whose totals would pass it (2^53: Lua's numbers, doubles, stop being exact there; Redis's integers end at 2^63).
COUNTER_LIMIT = 2**53


def field_table(name: str, fields: Sequence[str]) -> str:
    """`local P = {event_id = 1, ...}`: Lua reads a row's fields by name."""
    return f"local {name} = {{" + ", ".join(f"{field} = {i}" for i, field in enumerate(fields, 1)) + "}\n"


def lua_source(name: str) -> str:
    return resources.files(__package__).joinpath(f"{name}.lua").read_text()


def _script(*parts: str) -> str:
    return (field_table("P", PURCHASE_FIELDS) + field_table("X", EXPOSURE_FIELDS)
            + f"local COUNTER_LIMIT = {COUNTER_LIMIT}\n" + "\n".join(lua_source(part) for part in parts))


APPLY_PURCHASES = _script("chunked", "outbox", "attribution", "apply_purchases")
APPLY_EXPOSURES = _script("chunked", "outbox", "attribution", "apply_exposures")
APPLY_SHARED = _script("chunked", "outbox", "apply_shared")

"""The stream's Redis scripts. The Lua lives in this folder; each script is its shared parts plus its own file,
preceded by the tables that name the fields of the rows Python sends, so both sides use one definition."""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources

from common.keys import KeyLayout

# One purchase row of the purchases script's JSON argument, in order (`stream_app.state.purchase_row` builds it).
PURCHASE_FIELDS = ("event_id", "order_id", "product_id", "category", "units", "cents", "ts", "latest")
# One exposure row of the exposures script's JSON argument, in order.
EXPOSURE_FIELDS = ("request_id", "customer_id", "group", "ts", "product_ids", "propensity")  # propensity 0: none
EXPOSURE_KEYS = 4  # per exposure: the customer's exposures (in the experiment), purchases, converted ids, requests
# A customer's stored units and cents stay below this: the purchases script refuses a batch's events of a customer
# whose totals would pass it (2^53: Lua's numbers, doubles, stop being exact there; Redis's integers end at 2^63).
COUNTER_LIMIT = 2**53


AB_KEYS_PER_ARM = 5


def ab_keys(keys: KeyLayout, experiment: str, arms: Sequence[str]) -> list[str]:
    """An experiment's shared A/B keys, in the order `ab_keys` in attribution.lua reads them: the customers'
    arms, their attributed revenue, their pre-period spend, their propensity, then AB_KEYS_PER_ARM per arm."""
    per_arm = (keys.ab_group_counters, keys.ab_exposed_customers, keys.ab_converted_customers, keys.ab_daily,
               keys.ab_first_times)
    return [keys.ab_customer_groups(experiment), keys.ab_customer_revenue(experiment), keys.ab_customer_pre(experiment),
            keys.ab_customer_propensity(experiment),
            *(key(experiment, arm) for arm in arms for key in per_arm)]


def field_table(name: str, fields: Sequence[str]) -> str:
    """`local P = {event_id = 1, ...}`: Lua reads a row's fields by name."""
    return f"local {name} = {{" + ", ".join(f"{field} = {i}" for i, field in enumerate(fields, 1)) + "}\n"


def lua_source(name: str) -> str:
    return resources.files(__package__).joinpath(f"{name}.lua").read_text()


def _script(*parts: str) -> str:
    return (field_table("P", PURCHASE_FIELDS) + field_table("X", EXPOSURE_FIELDS)
            + f"local AB_KEYS_PER_ARM = {AB_KEYS_PER_ARM}\n" + f"local COUNTER_LIMIT = {COUNTER_LIMIT}\n"
            + "\n".join(lua_source(part) for part in parts))


APPLY_PURCHASES = _script("count_first", "attribution", "apply_purchases")
APPLY_EXPOSURES = _script("count_first", "attribution", "apply_exposures")

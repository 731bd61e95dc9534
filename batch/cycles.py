"""Each customer's buy cycle, for the Customer page: the products they bought on at least two days (the ones they
buy again, most bought first) and the latest days they bought each. The API adds the stream's newer purchases and
works out the cycle (the median days between purchases) and when the next one is due."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

PRODUCTS_PER_CUSTOMER = 5
DAYS_PER_PRODUCT = 8


def buy_cycles(lines: pd.DataFrame, products: int = PRODUCTS_PER_CUSTOMER,
               days: int = DAYS_PER_PRODUCT) -> dict[str, str]:
    """customer id -> JSON [[product id, [day, ...]], ...]: days since the epoch, oldest first, the latest `days`;
    at most `products` products a customer bought on two days or more, most bought days first (ties: the one
    bought last first). Customers with none are left out."""
    day = lines["event_time"].to_numpy(dtype="datetime64[ns]").astype("datetime64[D]").astype(np.int64)
    bought = pd.DataFrame({"customer": lines["customer_id"].astype(str).to_numpy(),
                           "product": lines["product_id"].astype(str).to_numpy(), "day": day}).drop_duplicates()
    pair = bought.groupby(["customer", "product"], sort=False)["day"]
    bought["days"], bought["last"] = pair.transform("size"), pair.transform("max")
    bought = bought[bought["days"] >= 2]
    if bought.empty:
        return {}
    # the customer's products ranked by how many days they bought them, then by the last day
    ranked = (bought[["customer", "product", "days", "last"]].drop_duplicates(["customer", "product"])
              .sort_values(["customer", "days", "last", "product"], ascending=[True, False, False, True]))
    ranked = ranked[ranked.groupby("customer", sort=False).cumcount() < products]
    ranked["rank"] = ranked.groupby("customer", sort=False).cumcount()
    kept = bought.merge(ranked[["customer", "product", "rank"]], on=["customer", "product"])
    kept = kept.sort_values(["customer", "rank", "day"])
    kept = kept[kept.groupby(["customer", "product"], sort=False).cumcount(ascending=False) < days]
    customers, products_of = kept["customer"].to_numpy(), kept["product"].to_numpy()
    starts = np.flatnonzero(np.r_[True, (customers[1:] != customers[:-1]) | (products_of[1:] != products_of[:-1])])
    cycles: dict[str, list[list[object]]] = {}
    for start, days_of in zip(starts, np.split(kept["day"].to_numpy(), starts[1:]), strict=True):
        cycles.setdefault(customers[start], []).append([products_of[start], days_of.tolist()])
    return {customer: json.dumps(rows, separators=(",", ":")) for customer, rows in cycles.items()}

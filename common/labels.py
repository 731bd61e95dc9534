"""What people read for the names the system uses inside (a model, an evaluation variant, a serving strategy, a
cleaning rule, a profile value): one table, in English, translated by the catalogue where it is shown. A name
the table does not know reads as itself with spaces."""

from __future__ import annotations

from collections.abc import Callable

from common.i18n import N_

LABELS: dict[str, str] = {
    # models and baselines of the offline evaluation
    "hybrid": N_("blend of the models"),
    "ranker": N_("learned ranker"),
    # the ranker's ablations (batch/ranker/stage.py)
    "ranker (no buy-cycle features)": N_("learned ranker without the buy-cycle features"),
    "ranker (no generator scores)": N_("learned ranker without the generators' scores"),
    "popularity": N_("best-sellers"),
    "popularity_recent": N_("recent best-sellers"),
    "trend": N_("trending products"),
    "repeat": N_("buy again"),
    "rules": N_("bought together (rules)"),
    "ease": N_("EASE (similar items)"),
    "als": N_("ALS (matrix factorisation)"),
    "nmf": N_("NMF (matrix factorisation)"),
    "tifu": N_("TIFU-KNN (similar customers)"),
    "cohort": N_("best-sellers of similar customers"),
    # evaluation variants
    "all_items": N_("all products"),
    "new_items": N_("products new to the customer"),
    "all_customers": N_("all customers"),
    "new_customers": N_("new customers"),
    # serving strategies and A/B groups
    "model": N_("the model"),
    "best_sellers": N_("best-sellers"),
    "cold_start": N_("cold start"),
    "control": N_("control"),
    "treatment": N_("treatment"),
    # cleaning rules
    "missing_customer": N_("no customer id"),
    "unknown_customer": N_("customer not in the customers table"),
    "cancellation": N_("cancelled order"),
    "non_positive_units": N_("zero or negative units"),
    "non_positive_amount": N_("zero or negative amount"),
    "missing_value": N_("a required value is missing"),
    "unparseable_number": N_("a number that cannot be read"),
    "unparseable_date": N_("a date that cannot be read"),
    "fractional_units": N_("fractional units"),
    "non_product_code": N_("not a product code (fees, postage)"),
    "units_above_limit": N_("units above the limit"),
    "amount_above_limit": N_("amount above the limit"),
    "event_time_out_of_range": N_("date in the future or before 2000"),
    "duplicate": N_("duplicate line"),
    # profile values
    "unknown": N_("unknown"),
    "under 18": N_("under 18"),
    "F": N_("female"),
    "M": N_("male"),
}


def label(name: str, gettext: Callable[[str], str]) -> str:
    """The words for `name` in the language `gettext` speaks."""
    known = LABELS.get(name)
    return gettext(known) if known is not None else name.replace("_", " ")

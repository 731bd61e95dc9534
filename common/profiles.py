"""Customer profiles as every component reads them: age bands, the profile hash in Redis, and demographic cohorts
(region and age band) with their broader fallbacks. Pure functions, shared by the batch, the stream and the API."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from common.events import CustomerProfile
from common.i18n import Gettext, english

# Lower bound of each band; ages below the first are "under 18".
AGE_BANDS = ((18, "18-24"), (25, "25-34"), (35, "35-44"), (45, "45-54"), (55, "55-64"), (65, "65+"))
UNDER_18 = "under 18"
MIN_AGE, MAX_AGE = 10, 110  # outside these a birth date is taken to be wrong
BAND_ORDER = (UNDER_18, *(name for _, name in AGE_BANDS))
PROFILE_FIELDS = ("region", "city", "gender", "birth_date")


def age_band(age: int | None) -> str | None:
    if age is None:
        return None
    band = UNDER_18
    for lower, name in AGE_BANDS:
        if age >= lower:
            band = name
    return band


def age_on(birth: date, day: date) -> int:
    """Whole years from `birth` to `day`."""
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def profile_hash(profile: CustomerProfile) -> dict[str, str]:
    """The Redis hash of a profile: only the fields the customers table has."""
    values = {"region": profile.region, "city": profile.city, "gender": profile.gender,
              "birth_date": profile.birth_date.isoformat() if profile.birth_date else None}
    return {name: value for name, value in values.items() if value}


def profile_view(fields: Mapping[str, str], day: date) -> dict[str, str | int | None]:
    """A stored profile as the API shows it: its fields plus age and age band on `day`."""
    birth = date.fromisoformat(fields["birth_date"]) if fields.get("birth_date") else None
    age = age_on(birth, day) if birth else None
    if age is not None and not MIN_AGE <= age <= MAX_AGE:
        age = None
    return {name: fields.get(name) for name in PROFILE_FIELDS} | {"age": age, "age_band": age_band(age)}


def cohort_key(region: str | None, band: str | None) -> str:
    """'region=Antioquia|age=25-34', 'region=Antioquia' or 'age=25-34' (the published cohort lists' keys)."""
    parts = ([f"region={region}"] if region else []) + ([f"age={band}"] if band else [])
    return "|".join(parts)


def cohort_chain(region: str | None, band: str | None) -> list[str]:
    """The cohorts a customer belongs to, narrowest first: region + age band, region, age band."""
    chain = [cohort_key(region, band), cohort_key(region, None), cohort_key(None, band)]
    return [key for key in dict.fromkeys(chain) if key]


def cohort_reason(key: str, gettext: Gettext = english) -> str:
    """'popular with customers in Antioquia aged 25-34' for a cohort key, in the language of `gettext`."""
    parts = dict(part.split("=", 1) for part in key.split("|"))
    region, age = parts.get("region"), parts.get("age")
    if age == UNDER_18:
        template = (gettext("popular with customers in {region} under 18") if region
                    else gettext("popular with customers under 18"))
    elif age:
        template = (gettext("popular with customers in {region} aged {age}") if region
                    else gettext("popular with customers aged {age}"))
    else:
        template = gettext("popular with customers in {region}") if region else gettext("popular with customers")
    return template.format(region=region, age=age)


def cohort_best_sellers(chain: Sequence[str], cohorts: Mapping[str, Sequence[Mapping[str, Any]]],
                        fallback: Sequence[Mapping[str, Any]], k: int) -> list[tuple[str, int, str | None]]:
    """The best-sellers of the narrowest published cohort in `chain`, topped up from `fallback` (the shop's
    best-sellers): (product id, buyers, the cohort key or None for a top-up), k at most. A cohort too small to
    publish is simply absent, so the chain falls back to a broader one."""
    listed: Sequence[Mapping[str, Any]] = ()
    key = next((key for key in chain if cohorts.get(key)), None)
    if key is not None:
        listed = cohorts[key]
    out: list[tuple[str, int, str | None]] = []
    seen: set[str] = set()
    for item, source in [*((i, key) for i in listed), *((i, None) for i in fallback)]:
        product = str(item["product_id"])
        if product not in seen:
            seen.add(product)
            out.append((product, int(item["buyers"]), source))
            if len(out) == k:
                break
    return out

from datetime import date

import pytest

from common.events import CustomerProfile
from common.i18n import translations
from common.profiles import (
    age_band,
    age_on,
    cohort_best_sellers,
    cohort_chain,
    cohort_key,
    cohort_reason,
    profile_hash,
    profile_view,
)


@pytest.mark.parametrize(("age", "band"), [
    (None, None), (10, "under 18"), (17, "under 18"), (18, "18-24"), (24, "18-24"), (25, "25-34"), (34, "25-34"),
    (35, "35-44"), (54, "45-54"), (55, "55-64"), (64, "55-64"), (65, "65+"), (104, "65+"),
])
def test_age_bands_have_inclusive_lower_bounds(age: int | None, band: str | None) -> None:
    assert age_band(age) == band


def test_age_counts_whole_years_up_to_the_birthday() -> None:
    assert age_on(date(1984, 5, 3), date(2023, 5, 2)) == 38
    assert age_on(date(1984, 5, 3), date(2023, 5, 3)) == 39


def test_profile_hash_keeps_only_known_fields_and_the_view_adds_age() -> None:
    profile = CustomerProfile(customer_id="c1", region="Antioquia", city=None, gender="F",
                              birth_date=date(1990, 1, 31))
    stored = profile_hash(profile)
    assert stored == {"region": "Antioquia", "gender": "F", "birth_date": "1990-01-31"}
    assert profile_view(stored, date(2023, 1, 30)) == {
        "region": "Antioquia", "city": None, "gender": "F", "birth_date": "1990-01-31", "age": 32,
        "age_band": "25-34"}


def test_cohort_chain_goes_from_narrow_to_broad_and_skips_what_is_unknown() -> None:
    assert cohort_chain("Antioquia", "25-34") == ["region=Antioquia|age=25-34", "region=Antioquia", "age=25-34"]
    assert cohort_chain("Antioquia", None) == ["region=Antioquia"]
    assert cohort_chain(None, "65+") == ["age=65+"]
    assert cohort_chain(None, None) == []
    assert cohort_reason(cohort_key("Antioquia", None)) == "popular with customers in Antioquia"
    assert cohort_reason(cohort_key("Antioquia", "25-34")) == "popular with customers in Antioquia aged 25-34"
    spanish = translations("es").gettext
    assert cohort_reason(cohort_key("Antioquia", "25-34"), spanish) == (
        "popular entre clientes de Antioquia de 25-34 años")
    assert cohort_reason(cohort_key(None, "under 18")) == "popular with customers under 18"


def test_cohort_best_sellers_fall_back_to_a_broader_cohort_then_top_up_from_the_shop() -> None:
    shop = [{"product_id": p, "buyers": 100 - i} for i, p in enumerate("abcdef")]
    cohorts = {"region=Antioquia": [{"product_id": "x", "buyers": 9}, {"product_id": "b", "buyers": 7}]}
    chain = cohort_chain("Antioquia", "25-34")  # the narrow cohort was too small to publish
    assert cohort_best_sellers(chain, cohorts, shop, 4) == [
        ("x", 9, "region=Antioquia"), ("b", 7, "region=Antioquia"), ("a", 100, None), ("c", 98, None)]
    assert cohort_best_sellers(cohort_chain("Cauca", None), cohorts, shop, 2) == [("a", 100, None),
                                                                                 ("b", 99, None)]

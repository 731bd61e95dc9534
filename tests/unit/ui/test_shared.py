from __future__ import annotations

import math

from ui.i18n import Speaker, language_choice
from ui.shared import api_path


def test_when_formats_times_in_the_locale_and_says_dash_for_missing_ones() -> None:
    assert Speaker("en").when(1_700_000_000) == "14 Nov 2023 22:13"
    assert Speaker("es").when(1_700_000_000) == "14 nov 2023 22:13"
    assert Speaker().when(None) == Speaker().when(0) == Speaker().when(math.nan) == "-"


def test_numbers_and_money_follow_the_locale_and_the_shop_currency() -> None:
    english, spanish = Speaker("en", "GBP"), Speaker("es", "COP")
    assert english.number(1234567.891, 2) == "1,234,567.89"
    assert spanish.number(1234567.891, 2) == "1.234.567,89"
    assert english.money(1234.5) == "£1,234.50"
    assert spanish.money(1234.5) == "$1.234,50"
    assert english.percent(0.1234) == "12.3%" and spanish.percent(0.1234) == "12,3%"
    assert english.percent(-0.031, signed=True) == "-3.1%" and english.percent(0.031, signed=True) == "+3.1%"


def test_labels_speak_the_language() -> None:
    assert Speaker("en").segment("needs_attention") == "Needs attention"
    assert Speaker("es").segment("needs_attention") == "Requieren atención"
    assert Speaker("es").label("units_above_limit") == "unidades por encima del límite"
    assert Speaker("es").label("some_new_rule") == "some new rule"  # unknown: the name, readable


def test_the_first_language_is_the_urls_then_the_configured_one() -> None:
    assert language_choice("es", "en") == "es"
    assert language_choice(None, "es") == "es"
    assert language_choice("fr", "en") == "en"


def test_a_typed_id_stays_one_quoted_path_segment() -> None:
    assert api_path("customers", "c-1") == "/customers/c-1"
    assert api_path("customers", "../admin/refit?x=1#y", "exposures") == (
        "/customers/..%2Fadmin%2Frefit%3Fx%3D1%23y/exposures")

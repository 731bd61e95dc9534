"""What a page says and how it writes numbers: the browser session's language (the sidebar's choice, kept for the
session; first `?lang=` in the URL, else RECSYS_UI_LANGUAGE), its catalogue, and numbers, dates and money in that
language's locale and the shop's currency."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import altair as alt
from babel.dates import format_datetime, get_day_names, get_month_names
from babel.numbers import format_currency, format_decimal, format_percent, get_currency_symbol

from common.i18n import DEFAULT_LANGUAGE, LANGUAGES, Language, translations
from common.labels import label
from common.segments import words

# The locale each language writes numbers and dates in: the case study's shop is Colombian.
LOCALES: dict[Language, str] = {"en": "en_GB", "es": "es_CO"}
LANGUAGE_NAMES: dict[Language, str] = {"en": "English", "es": "Español"}
DEFAULT_CURRENCY = "COP"  # the case study's; a model trained on a mapping that names another uses that one


@dataclass(frozen=True)
class Speaker:
    """Everything a page writes for people, in one language and one currency."""

    language: Language = DEFAULT_LANGUAGE
    currency: str = DEFAULT_CURRENCY

    @property
    def locale(self) -> str:
        return LOCALES[self.language]

    def gettext(self, message: str) -> str:
        return translations(self.language).gettext(message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return translations(self.language).ngettext(singular, plural, n)

    def number(self, value: float | None, digits: int = 0) -> str:
        if value is None or value != value:
            return "-"
        return str(format_decimal(value, format=_digits(digits), locale=self.locale))

    def signed(self, value: float, digits: int = 1) -> str:
        """A difference, its sign always written: +3.1 / -0.4."""
        body = _digits(digits)
        return str(format_decimal(value, format=f"+{body};-{body}", locale=self.locale))

    def significant(self, value: float) -> str:
        """Three significant digits (a p-value): 0.2, 0.00123, 1.2E-5."""
        if value and abs(value) < 1e-3:
            return str(format_decimal(value, format="0.##E0", locale=self.locale))
        return str(format_decimal(float(f"{value:.3g}"), format="#,##0.######", locale=self.locale))

    def percent(self, value: float | None, digits: int = 1, signed: bool = False) -> str:
        if value is None or value != value:
            return "-"
        text = str(format_percent(abs(value) if signed else value, format=_digits(digits) + "%", locale=self.locale))
        return (("+" if value >= 0 else "-") + text) if signed else text

    def money(self, value: float | None) -> str:
        if value is None or value != value:
            return "-"
        return str(format_currency(value, self.currency, locale=self.locale))

    def when(self, ts: float | None) -> str:
        """A timestamp as a UTC date and time in the locale's words; '-' for none (None, 0 or NaN)."""
        if ts is None or ts != ts or not ts:
            return "-"
        return str(format_datetime(datetime.fromtimestamp(float(ts), UTC), "d MMM y HH:mm", tzinfo=UTC,
                                   locale=self.locale))

    def day(self, value: datetime | str) -> str:
        """A date (or the date of an ISO timestamp) in the locale's words."""
        moment = datetime.fromisoformat(value) if isinstance(value, str) else value
        return str(format_datetime(moment, "d MMM y", locale=self.locale))

    def label(self, name: str) -> str:
        """The words for one of the system's own names (a model, a rule, a strategy)."""
        return label(name, self.gettext)

    def segment(self, name: str) -> str:
        return words(name, self.gettext)["label"]

    def vega_locale(self) -> alt.Locale:
        """Vega's number and time formats in this locale, so chart axes read like the rest of the page."""
        months, days = get_month_names("wide", locale=self.locale), get_day_names("wide", locale=self.locale)
        short_months = get_month_names("abbreviated", locale=self.locale)
        short_days = get_day_names("abbreviated", locale=self.locale)
        decimal, thousands = (".", ",") if self.language == "en" else (",", ".")
        symbol = get_currency_symbol(self.currency, locale=self.locale)
        number = {"decimal": decimal, "thousands": thousands, "grouping": [3], "currency": [symbol, ""]}
        # Vega's weeks start on Sunday; Babel's day names on Monday (index 0)
        week = [6, 0, 1, 2, 3, 4, 5]
        time = {"dateTime": "%x, %X", "date": "%d/%m/%Y", "time": "%H:%M:%S", "periods": ["AM", "PM"],
                "days": [days[i] for i in week], "shortDays": [short_days[i] for i in week],
                "months": [months[i] for i in range(1, 13)], "shortMonths": [short_months[i] for i in range(1, 13)]}
        return alt.Locale(number=cast(Any, number), time=cast(Any, time))


def _digits(digits: int) -> str:
    """A Babel number pattern: grouped thousands and `digits` decimals."""
    return "#,##0" + ("." + "0" * digits if digits else "")


def language_choice(query: str | None, configured: str) -> Language:
    """The session's first language: `?lang=` when it names one of ours, else the configured default."""
    for wanted in (query, configured):
        for language in LANGUAGES:
            if wanted == language:
                return language
    return DEFAULT_LANGUAGE

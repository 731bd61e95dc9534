"""The languages the live view and the API speak. Messages are gettext's: marked in the code with `_()` (or `N_()`
where a table holds them before anyone is asked), extracted with Babel into `common/locales/recsys.pot`, and
translated in `common/locales/<language>/LC_MESSAGES/recsys.po` (`make messages` refreshes both). English is the
source language, so it needs no catalogue. The `.po` file is compiled when first asked for: the text under review
is the one that runs."""

from __future__ import annotations

import gettext
import io
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Literal, get_args

Language = Literal["en", "es"]
LANGUAGES: tuple[Language, ...] = get_args(Language)
DEFAULT_LANGUAGE: Language = "en"
DOMAIN = "recsys"
LOCALES = Path(__file__).parent / "locales"
Gettext = Callable[[str], str]


def english(message: str) -> str:
    """The `gettext` of the source language."""
    return message


def N_(message: str) -> str:  # gettext's own name for "mark now, translate where shown"
    """Marks a message for extraction where it is defined; it is translated where it is shown."""
    return message


def catalogue_path(language: str) -> Path:
    return LOCALES / language / "LC_MESSAGES" / f"{DOMAIN}.po"


@lru_cache(maxsize=len(LANGUAGES))
def translations(language: Language) -> gettext.NullTranslations:
    """The language's catalogue (fuzzy entries left out, as gettext does); English is the messages themselves."""
    if language == DEFAULT_LANGUAGE:
        return gettext.NullTranslations()
    from babel.messages.mofile import write_mo  # the API and the UI only pay Babel's import once
    from babel.messages.pofile import read_po

    with catalogue_path(language).open("rb") as po:
        catalog = read_po(po, locale=language, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


def language_of(accept_language: str | None, default: Language = DEFAULT_LANGUAGE) -> Language:
    """The best of our languages for an `Accept-Language` header ("es-CO,es;q=0.9,en;q=0.8"); `default` when it
    names none of them. A q of 0 means "not this one"."""
    if not accept_language:
        return default
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(accept_language.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        primary = tag.strip().split("-")[0].lower()
        if quality > 0 and primary in LANGUAGES:
            ranked.append((-quality, position, primary))
    if not ranked:
        return default
    best: Language = min(ranked)[2]  # type: ignore[assignment]
    return best

"""Finds English left on a page that should be Spanish: any catalogue message (or a long fixed part of one) in its
English form, and English function words. Product names, ids and `code` (commands, file names) are not words a
page translates, so code spans are left out; the synthetic shop's names are Spanish."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache

from babel.messages.pofile import read_po

from common.i18n import catalogue_path

FUNCTION_WORDS = re.compile(r"\b(the|and|of|with|without|to|is|are|by|from|for|yet|this|that|which|was|has|have|"
                            r"not|customers?|bought|shown|orders?|products?|items?|features|scores?|ranker|"
                            r"best-sellers?|rows?|removed|reason|groups?|models?|segments?|revenue|share|days?)\b",
                            re.IGNORECASE)
CODE = re.compile(r"`[^`]*`")
PLACEHOLDER = re.compile(r"\{\w*\}")
# Words both languages write alike (a metric's name, a group's name), never evidence of English.
SHARED = {"control", "MAP@10", "Idioma / Language", "English", "Español"}


@cache
def _english_forms() -> tuple[frozenset[str], tuple[str, ...]]:
    """(whole messages, fixed parts of three words or more) whose Spanish differs."""
    with catalogue_path("es").open("rb") as po:
        entries = [(str(m.id), str(m.string)) for m in read_po(po) if m.id and m.id != m.string]
    whole = frozenset(english for english, _ in entries if not PLACEHOLDER.search(english))
    parts = tuple(part.strip() for english, _ in entries for part in PLACEHOLDER.split(english)
                  if len(part.split()) >= 3)
    return whole, parts


def english_left(texts: Iterable[str]) -> list[str]:
    whole, parts = _english_forms()
    found = []
    for text in texts:
        text = CODE.sub(" ", text).strip()
        if not text or text in SHARED:
            continue
        if text in whole:
            found.append(text)
            continue
        found += [f"{part!r} in {text!r}" for part in parts if part in text]
        found += [f"{match.group(0)!r} in {text!r}" for match in FUNCTION_WORDS.finditer(text)]
    return found

"""The catalogue is complete: every message the code marks (as `make messages` extracts them with Babel) has a
Spanish translation, none fuzzy, none stale, each with the same placeholders; and Accept-Language is read right."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from common.i18n import catalogue_path, language_of, translations
from common.labels import LABELS
from common.segments import ALL_RULES, words

ROOT = Path(__file__).resolve().parents[3]
PLACEHOLDER = re.compile(r"\{(\w*)\}")


def _marked_messages() -> set[str]:
    with (ROOT / "babel.cfg").open() as config:
        method_map, options_map = parse_mapping_cfg(config)  # type: ignore[no-untyped-call]
    keywords = {"_": None, "N_": None, "gettext": None, "ngettext": (1, 2)}
    found: set[str] = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
            str(ROOT), method_map, options_map, keywords=keywords):
        found.update([message] if isinstance(message, str) else message)
    return found


def test_every_marked_message_has_a_spanish_translation() -> None:
    with catalogue_path("es").open("rb") as po:
        catalogue = {m.id: m for m in read_po(po) if m.id}
    marked = _marked_messages()
    assert len(marked) > 250  # the live view's pages, the segment table, the labels, the reasons
    assert sorted(marked - set(catalogue)) == [], "run `make messages` and translate the new entries"
    assert sorted(set(catalogue) - marked) == [], "stale entries: run `make messages`"
    untranslated = sorted(i for i, m in catalogue.items() if not m.string or m.fuzzy)
    assert untranslated == []
    for message_id, entry in catalogue.items():
        assert sorted(PLACEHOLDER.findall(str(message_id))) == sorted(PLACEHOLDER.findall(str(entry.string))), (
            message_id)


def test_the_tables_speak_spanish() -> None:
    gettext = translations("es").gettext
    for rule in ALL_RULES:
        told = words(rule.name, gettext)
        assert told["label"] != rule.label and told["action"] != rule.action and told["description"]
    assert all(gettext(label) != label for name, label in LABELS.items() if name not in ("control",))
    assert words("champions", translations("en").gettext)["label"] == "Champions"


@pytest.mark.parametrize(("header", "language"), [
    (None, "en"), ("", "en"), ("es-CO,es;q=0.9,en;q=0.8", "es"), ("en-GB,en;q=0.9,es;q=0.8", "en"),
    ("fr-FR,fr;q=0.9", "en"), ("fr;q=1, es;q=0.5", "es"), ("es;q=0, en;q=0.1", "en"), ("ES", "es"),
    ("es;q=abc, en;q=0.2", "en"), ("*", "en"),
])
def test_accept_language_picks_the_best_of_our_languages(header: str | None, language: str) -> None:
    assert language_of(header) == language

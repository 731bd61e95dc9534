"""A version's product names are parsed from their JSON only when an answer names them; the live catalogue wins."""

from __future__ import annotations

import json

from api.model_cache import ProductNames


def test_names_come_from_the_catalogue_first_then_the_version_parsed_once() -> None:
    published = {"p1": json.dumps({"name": "old name"}).encode(), "p2": json.dumps({"name": "second"}).encode()}
    names = ProductNames(published, {"p1": {"name": "live name"}, "p3": {"name": "new in the catalogue"}})
    assert names["p1"] == {"name": "live name"}
    assert names.get("p2") == {"name": "second"}
    assert names["p2"] is names["p2"]  # parsed once, then kept
    assert names.get("missing", {}) == {}
    assert sorted(names) == ["p1", "p2", "p3"] and len(names) == 3


def test_a_product_never_named_is_never_parsed() -> None:
    names = ProductNames({"p1": b"{\"name\": \"fine\"}", "broken": b"not json"}, {})
    assert names["p1"] == {"name": "fine"}  # the broken entry would fail only if someone asked for it

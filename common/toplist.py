"""A customer's published top-N list in its compact stored form: 'p1,p2,...|0.9,0.8,...|rue...', one source code
per item. Read on every `/recommend`, so it is parsed with str.split rather than JSON (and takes a third of the
memory of the JSON list; see docs/scaling.md). Product ids cannot hold ',' or '|' (the event id pattern)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

SOURCE_CODES = {"repeat": "r", "ease": "e", "rules": "u", "trend": "t", "nmf": "n", "popularity": "p", "als": "a"}
SOURCES = {code: name for name, code in SOURCE_CODES.items()}


@dataclass(frozen=True)
class TopList:
    products: list[str]
    scores: list[float]
    sources: list[str]


def encode(items: Sequence[tuple[str, float, str]]) -> str:
    """(product, score, source) best first -> the stored string."""
    products = ",".join(p for p, _, _ in items)
    scores = ",".join(f"{s:.5g}" for _, s, _ in items)
    return f"{products}|{scores}|{''.join(SOURCE_CODES[source] for _, _, source in items)}"


def decode(raw: str | bytes) -> TopList:
    text = raw.decode() if isinstance(raw, bytes) else raw
    products, scores, codes = text.split("|")
    if not products:
        return TopList([], [], [])
    return TopList(products.split(","), [float(s) for s in scores.split(",")], [SOURCES[c] for c in codes])

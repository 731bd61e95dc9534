"""A customer's published top-N list in its compact stored form: 'p1,p2,...|0.9,0.8,...|rue...', one source code
per item. Read on every `/recommend`, so it is parsed with str.split rather than JSON (and takes a third of the
memory of the JSON list; see docs/scaling.md). Product ids cannot hold ',' or '|' (the event id pattern)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

SOURCE_CODES = {"repeat": "r", "ease": "e", "rules": "u", "trend": "t", "nmf": "n", "popularity": "p", "als": "a",
                "tifu": "k"}
SOURCES = {code: name for name, code in SOURCE_CODES.items()}


@dataclass(frozen=True)
class TopList:
    products: list[str]
    scores: list[float]
    sources: list[str]

    def score(self, i: int) -> float:
        return self.scores[i]

    def source(self, i: int) -> str:
        return self.sources[i]


class LazyTopList:
    """The stored string split but its numbers not parsed: `/recommend` serves a few of the 50 items, and parsing
    every score cost about as much as the rest of the request's ranking. Same reading methods as `TopList`."""

    __slots__ = ("_codes", "_scores", "products")

    def __init__(self, products: list[str], scores: list[str], codes: str) -> None:
        self.products = products
        self._scores = scores
        self._codes = codes

    def score(self, i: int) -> float:
        return float(self._scores[i])

    def source(self, i: int) -> str:
        return SOURCES[self._codes[i]]


def encode(items: Sequence[tuple[str, float, str]]) -> str:
    """(product, score, source) best first -> the stored string."""
    products = ",".join(p for p, _, _ in items)
    scores = ",".join(f"{s:.5g}" for _, s, _ in items)
    return f"{products}|{scores}|{''.join(SOURCE_CODES[source] for _, _, source in items)}"


def decode_lazily(raw: str | bytes) -> LazyTopList:
    text = raw.decode() if isinstance(raw, bytes) else raw
    products, scores, codes = text.split("|")
    if not products:
        return LazyTopList([], [], "")
    return LazyTopList(products.split(","), scores.split(","), codes)


def decode(raw: str | bytes) -> TopList:
    text = raw.decode() if isinstance(raw, bytes) else raw
    products, scores, codes = text.split("|")
    if not products:
        return TopList([], [], [])
    return TopList(products.split(","), [float(s) for s in scores.split(",")], [SOURCES[c] for c in codes])

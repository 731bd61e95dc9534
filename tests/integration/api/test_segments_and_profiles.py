"""Segment offers, the live segment, profiles, catalogue names and the demographic cold start, served by the API
over a version published by `batch.pipeline.run` (and, for the cold start, a version with cohort lists)."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Sequence
from datetime import date
from itertools import pairwise

import pandas as pd
import pytest
import redis.asyncio as aioredis
from fastapi.testclient import TestClient

from api.main import create_app
from batch.publish import ModelBundle, publish
from batch.segments import rfm_table, snapshot_of
from common.assignment import group_of
from common.events import CustomerProfile, ProductInfo
from common.i18n import translations
from common.keys import KeyLayout
from common.segments import words
from producers.replay import to_events
from stream_app.master_data import MasterDataWriter
from stream_app.state import StateWriter
from tests.integration.conftest import Isolated, Published

pytestmark = pytest.mark.integration


def _lift_table(lines: pd.DataFrame, segments: pd.DataFrame, segment: str) -> pd.DataFrame:
    """The offer computed directly: each product's share of the segment's lines over its share of all lines."""
    tagged = lines.merge(segments[["customer_id", "segment"]], on="customer_id")
    mine = tagged[tagged["segment"] == segment]
    table = pd.DataFrame({"lift": mine["product_id"].value_counts(normalize=True)
                          / tagged["product_id"].value_counts(normalize=True),
                          "buyers": mine.groupby("product_id")["customer_id"].nunique()}).dropna()
    needed = max(5, math.ceil(0.02 * (segments["segment"] == segment).sum()))
    table = table[(table["lift"] > 1) & (table["buyers"] >= needed)]
    return table.rename_axis("product_id").reset_index().sort_values(["lift", "buyers", "product_id"],
                                                                     ascending=[False, False, True])


def test_segment_offers_equal_a_pandas_computation(api: TestClient, published: Published) -> None:
    segments = rfm_table(published.lines)
    checked = 0
    for segment in segments["segment"].unique():
        body = api.get(f"/segments/{segment}").json()
        expected = _lift_table(published.lines, segments, str(segment)).head(10)
        assert [p["product_id"] for p in body["products"]] == list(expected["product_id"])
        assert [p["lift"] for p in body["products"]] == pytest.approx(list(expected["lift"]), abs=1e-3)
        customers = segments[segments["segment"] == segment]["customer_id"]
        revenue = published.lines[published.lines["customer_id"].isin(customers)]["amount"].sum()
        assert body["customers"] == len(customers)
        assert body["revenue_share"] == pytest.approx(revenue / published.lines["amount"].sum(), abs=1e-4)
        assert body["action"] and body["model_version"] == published.version
        assert all(p["name"] for p in body["products"])  # the synthetic catalogue names every product
        checked += len(body["products"])
    assert checked > 0
    assert api.get("/segments/nobody").status_code == 404
    assert api.get("/segments/Not-A-Name").status_code == 422
    summary = api.get("/segments").json()["segments"]
    assert sum(s["revenue_share"] for s in summary) == pytest.approx(1.0, abs=0.01)


async def _seed_customer(published: Published, lines: pd.DataFrame, as_of: pd.Timestamp,
                         profile: CustomerProfile) -> None:
    client = aioredis.from_url(published.settings.redis_url)
    await StateWriter(client, published.keys).apply(list(to_events(lines)))
    await client.hset(published.keys.stream_stats(), "last_event_ts", int(as_of.timestamp()))
    await MasterDataWriter(client, published.keys).apply_profiles([(profile.customer_id, profile)])
    await client.aclose()


async def _write_master_data(url: str, keys: KeyLayout, profiles: Sequence[CustomerProfile] = (),
                             products: Sequence[ProductInfo] = ()) -> None:
    """What the stream's master-data agents write."""
    client = aioredis.from_url(url)
    writer = MasterDataWriter(client, keys)
    if profiles:
        await writer.apply_profiles([(p.customer_id, p) for p in profiles])
    if products:
        await writer.apply_products([(p.product_id, p) for p in products])
    await client.aclose()


def test_customer_shows_the_profile_and_the_live_segment_beside_last_nights(api: TestClient,
                                                                          published: Published) -> None:
    segments = rfm_table(published.lines).set_index("customer_id")
    # Live state equal to the batch's (the stream's clock at the batch's snapshot): the live segment must be the
    # published one, for a customer whose frequency the batch did not split between two scores (by rank).
    split = {f for f, scores in segments.groupby("frequency")["f"].nunique().items() if scores > 1}
    frequent = segments[~segments["frequency"].isin(split)].sort_values("frequency").index[-1]
    lines = published.lines[published.lines["customer_id"] == frequent]
    profile = CustomerProfile(customer_id=str(frequent), region="Antioquia", city="Envigado", gender="F",
                              birth_date=date(1990, 6, 1))
    asyncio.run(_seed_customer(published, lines, snapshot_of(published.lines), profile))
    body = api.get(f"/customers/{frequent}").json()
    row = segments.loc[frequent]
    assert body["segment"]["segment"] == row["segment"]
    live = body["live_segment"]
    assert (live["r"], live["f"], live["m"], live["segment"]) == (row["r"], row["f"], row["m"], row["segment"])
    assert live["recency_days"] == pytest.approx(row["recency_days"], abs=0.01)
    assert body["profile"]["city"] == "Envigado" and body["profile"]["age_band"] == "25-34"
    assert "birth_date" not in body["profile"] and "1990" not in json.dumps(body)  # the age band only
    names = json.loads(str(published.redis.hget(published.keys.model_products(published.version),
                                                body["recent"][0]["product_id"])))
    assert body["recent"][0]["name"] == names["name"]


def test_the_live_catalogue_wins_over_the_models_names(api: TestClient, published: Published) -> None:
    product = str(published.lines["product_id"].iloc[0])
    asyncio.run(_write_master_data(published.settings.redis_url, published.keys, products=[
        ProductInfo(product_id=product, name="Renamed", category="X")]))
    related = api.get(f"/products/{product}/related").json()
    assert (related["name"], related["category"]) == ("Renamed", "X")


def test_a_profiled_newcomer_gets_the_best_sellers_of_their_cohort(isolated: Isolated) -> None:
    settings = isolated.settings
    bundle = ModelBundle(
        version="v1", card={"version": "v1", "data_window": {"start": "2023-01-01", "end": "2023-11-16"},
                            "params": {"trend": {"window_days": 14}}},
        topn={}, popular=[{"product_id": p, "buyers": 90 - i} for i, p in enumerate(["g1", "g2", "g3"])],
        rules={}, category_rules=[], segments={}, segment_summary=[],
        products={"c1": {"name": "Arepa 1", "category": "Harinas"}},
        cohorts={"region=Antioquia|age=25-34": [{"product_id": "c1", "buyers": 40}],
                 "age=65+": [{"product_id": "c9", "buyers": 12}]},
    )
    publish(isolated.redis, isolated.keys, bundle)
    treated = [f"new{i}" for i in range(200) if group_of(settings.ab_salt, f"new{i}",
                                                         settings.ab_treatment_percent) == "treatment"]
    control = next(f"new{i}" for i in range(200) if group_of(settings.ab_salt, f"new{i}",
                                                             settings.ab_treatment_percent) == "control")
    profiles = [CustomerProfile(customer_id=treated[0], region="Antioquia", birth_date=date(1995, 1, 1)),
                CustomerProfile(customer_id=treated[1], region="Cauca", birth_date=date(1950, 1, 1)),
                CustomerProfile(customer_id=control, region="Antioquia", birth_date=date(1995, 1, 1))]
    asyncio.run(_write_master_data(settings.redis_url, isolated.keys, profiles=profiles))
    with TestClient(create_app(settings)) as api:
        narrow = api.get("/recommend", params={"customer_id": treated[0], "k": 3}).json()
        broad = api.get("/recommend", params={"customer_id": treated[1], "k": 2}).json()
        baseline = api.get("/recommend", params={"customer_id": control, "k": 2}).json()
        nobody = api.get("/recommend", params={"customer_id": treated[2], "k": 2}).json()
    assert (narrow["strategy"], narrow["cold_start"]) == ("cold_start", True)
    assert [(i["product_id"], i["reason"]) for i in narrow["items"]] == [
        ("c1", "popular with customers in Antioquia aged 25-34"), ("g1", "best-seller in the last 14 days"),
        ("g2", "best-seller in the last 14 days")]
    assert narrow["items"][0]["name"] == "Arepa 1"
    assert [(i["product_id"], i["reason"]) for i in broad["items"]] == [
        ("c9", "popular with customers aged 65+"), ("g1", "best-seller in the last 14 days")]
    assert [i["product_id"] for i in baseline["items"]] == ["g1", "g2"]  # control: the shop's best-sellers
    assert [i["product_id"] for i in nobody["items"]] == ["g1", "g2"]  # no profile: as before


def test_segment_words_reasons_buy_cycle_and_movement_in_the_requests_language(api: TestClient,
                                                                              published: Published) -> None:
    lines = published.lines
    days = lines.assign(day=lines["event_time"].dt.floor("D"))
    per_pair = days.groupby(["customer_id", "product_id"])["day"].nunique()
    customer, product = per_pair[per_pair >= 3].index[0]
    mine = lines[lines["customer_id"] == customer]
    # one purchase of the product 30 days after the model's data end, as the stream would see it
    later = mine[mine["product_id"] == product].tail(1).assign(
        event_time=lines["event_time"].max() + pd.Timedelta(days=30), order_id="after-the-model")
    profile = CustomerProfile(customer_id=str(customer), region="Antioquia", city="Medellín")
    asyncio.run(_seed_customer(published, pd.concat([mine, later]), later["event_time"].iloc[0], profile))

    spanish = {"Accept-Language": "es-CO,es;q=0.9"}
    body = api.get(f"/customers/{customer}", headers=spanish).json()
    segment = body["segment"]["segment"]
    assert body["segment"]["label"] == words(segment, translations("es").gettext)["label"] != segment
    assert body["segment"]["action"] == words(segment, translations("es").gettext)["action"]
    cycle = next(c for c in body["buy_cycle"] if c["product_id"] == product)
    bought = sorted(days[(days["customer_id"] == customer) & (days["product_id"] == product)]["day"].unique())
    expected = [*(pd.Timestamp(day).timestamp() for day in bought[-8:]), later["event_time"].iloc[0].timestamp()]
    assert cycle["purchases"] == pytest.approx(expected)
    gaps = [(b - a) / 86400 for a, b in pairwise(expected)]
    assert cycle["cycle_days"] == pytest.approx(float(pd.Series(gaps).median()), abs=0.01)

    moved = api.get("/segments/movement", headers=spanish).json()
    live_segment = body["live_segment"]["segment"]
    assert moved["customers"] == sum(m["customers"] for m in moved["moves"]) >= 1
    pair = next(m for m in moved["moves"] if (m["from_segment"], m["to_segment"]) == (segment, live_segment))
    assert pair["customers"] >= 1 and pair["to_label"] == words(live_segment, translations("es").gettext)["label"]

    english = {r["segment"]: r["label"] for r in api.get("/segments").json()["segments"]}
    in_spanish = {r["segment"]: r["label"] for r in api.get("/segments", headers=spanish).json()["segments"]}
    assert english.keys() == in_spanish.keys() and all(english[s] != in_spanish[s] for s in english)
    reasons = {i["reason"] for g in api.get("/recommend/preview", params={"customer_id": customer, "k": 10},
                                               headers=spanish).json()["groups"].values() for i in g["items"]}
    spanish_reasons = {translations("es").gettext(m) for m in (
        "customers who buy like you bought it", "you buy it regularly", "often bought together")}
    assert reasons and all(r in spanish_reasons or r.startswith(("de lo más vendido", "se compra a menudo con"))
                           for r in reasons), reasons

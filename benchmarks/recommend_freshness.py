"""End-to-end freshness: from a purchase produced to Kafka to that customer's next `/recommend` reflecting it.

On its own local stack (Tansu + redis-server), with a published model for a synthetic shop, the stream worker
(`recsys stream`) and the API (uvicorn with the production options) running, and a steady background load of
purchases by other customers: each trial takes a treatment customer the model knows, reads their list, produces
a purchase of the list's first product (event time after the model's data, so it counts as bought since), and
polls `/recommend` until that product has left the list. Two times per trial, from just before the send:

- state: the purchase is in the customer's recent purchases in Redis (what the worker writes);
- served: the first `/recommend` answer without the product (what a shopper would see).

Prints percentiles and writes JSON.

    .venv/bin/python -m benchmarks.recommend_freshness [--trials 120] [--background-rate 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer

from benchmarks.open_loop import Client
from benchmarks.serving import prepare_shop, start_server, stop_server
from benchmarks.stats import percentile
from common.assignment import group_of
from common.events import PurchaseEvent
from common.keys import KeyLayout
from common.settings import Settings
from stack import LocalStack
from stack.scratch import free_port, stack_settings, start_worker, stop_worker

TARGET_P99_MS = 1000.0
K = 10
GIVE_UP_S = 10.0
PERCENTILES = (50, 90, 99)


class Shop:
    """What the trials need to know about the synthetic shop."""

    def __init__(self, settings: Settings, lines: Any) -> None:
        customers = sorted(lines["customer_id"].unique())
        treatment = [c for c in customers if group_of(settings.ab_salt, c, settings.ab_treatment_percent)
                     == "treatment"]
        self.trial_customers = treatment
        self.background_customers = [c for c in customers if c not in set(treatment)]
        self.products = sorted(lines["product_id"].unique())
        self.after_model = lines["event_time"].max().to_pydatetime() + timedelta(days=1)


def purchase(customer: str, product: str, shop: Shop, serial: str) -> PurchaseEvent:
    return PurchaseEvent(event_id=f"fresh-{serial}", order_id=f"fresh-order-{serial}", customer_id=customer,
                         product_id=product, category="", units=1, amount=1.0, event_time=shop.after_model)


async def background(producer: AIOKafkaProducer, topic: str, shop: Shop, rate: float, stop: asyncio.Event) -> int:
    """`rate` purchases per second by customers outside the trials, until `stop`."""
    rng = random.Random(11)
    sent = 0
    started = time.perf_counter()
    while not stop.is_set():
        event = purchase(rng.choice(shop.background_customers), rng.choice(shop.products), shop, f"bg-{sent}")
        await producer.send(topic, event.to_bytes(), key=event.customer_id.encode())
        sent += 1
        await asyncio.sleep(max(0.0, started + sent / rate - time.perf_counter()))
    return sent


async def wait_until_applied(client: aioredis.Redis, keys: KeyLayout, producer: AIOKafkaProducer, topic: str,
                             shop: Shop) -> None:
    """The worker has joined its group and applies purchases (joining takes seconds on Tansu)."""
    customer, product = shop.background_customers[0], shop.products[0]
    await producer.send_and_wait(topic, purchase(customer, product, shop, "ready").to_bytes(),
                                 key=customer.encode())
    deadline = time.monotonic() + 90
    while await client.zscore(keys.customer_recent(customer), product) != shop.after_model.timestamp():
        if time.monotonic() > deadline:
            raise RuntimeError("the stream worker did not apply a purchase within 90 s")
        await asyncio.sleep(0.1)


async def trial(api: Client, client: aioredis.Redis, keys: KeyLayout, producer: AIOKafkaProducer, topic: str,
                shop: Shop, customer: str, serial: int, poll_s: float) -> dict[str, Any] | None:
    status, body = await api.get(f"/recommend?customer_id={customer}&k={K}")
    answer = json.loads(body)
    if status != 200 or answer["strategy"] != "model" or not answer["items"]:
        return None
    product = answer["items"][0]["product_id"]
    event = purchase(customer, product, shop, str(serial))
    bought_at = event.event_time.timestamp()
    started = time.perf_counter()
    await producer.send(topic, event.to_bytes(), key=customer.encode())
    state_s: float | None = None
    while time.perf_counter() - started < GIVE_UP_S:
        if state_s is None and await client.zscore(keys.customer_recent(customer), product) == bought_at:
            state_s = time.perf_counter() - started  # (a product bought before has an older time there)
        _, body = await api.get(f"/recommend?customer_id={customer}&k={K}")
        if product not in {item["product_id"] for item in json.loads(body)["items"]}:
            served_s = time.perf_counter() - started
            return {"customer": customer, "product": product, "state_ms": 1000 * (state_s or served_s),
                    "served_ms": 1000 * served_s}
        await asyncio.sleep(poll_s)
    return {"customer": customer, "product": product, "state_ms": None, "served_ms": None}


async def measure(settings: Settings, api_port: int, shop: Shop, trials: int, rate: float, poll_s: float
                  ) -> dict[str, Any]:
    keys = KeyLayout(settings.key_prefix)
    client = aioredis.from_url(settings.redis_url)
    api = Client("127.0.0.1", api_port)
    trial_producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, linger_ms=0, acks=1)
    load_producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, linger_ms=5, acks=1)
    await trial_producer.start()
    await load_producer.start()
    stop = asyncio.Event()
    results: list[dict[str, Any]] = []
    try:
        await wait_until_applied(client, keys, trial_producer, settings.topic_purchases, shop)
        loading = asyncio.create_task(background(load_producer, settings.topic_purchases, shop, rate, stop))
        await asyncio.sleep(2)  # the load is steady before the first trial
        customers = iter(shop.trial_customers)
        serial = 0
        while len(results) < trials:
            serial += 1
            customer = next(customers, None)
            if customer is None:
                raise RuntimeError(f"only {len(results)} treatment customers with a model list")
            result = await trial(api, client, keys, trial_producer, settings.topic_purchases, shop, customer,
                                 serial, poll_s)
            if result is not None:
                results.append(result)
                if len(results) % 20 == 0:
                    print(f"  {len(results)} trials", flush=True)
            await asyncio.sleep(0.05)
        stop.set()
        background_sent = await loading
    finally:
        stop.set()
        await trial_producer.stop()
        await load_producer.stop()
        await client.aclose()
    return {"trials": results, "background_sent": background_sent}


def percentiles(values: list[float]) -> dict[str, float]:
    return {f"p{p}_ms": percentile(values, p) for p in PERCENTILES} | {"max_ms": max(values)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=120)
    parser.add_argument("--background-rate", type=float, default=100, help="purchases per second by others")
    parser.add_argument("--poll-ms", type=float, default=5)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/recommend_freshness.json"))
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-fresh-"))
    settings = stack_settings(work / "run", key_prefix="benchfresh")
    local = LocalStack(settings)
    local.up()
    worker = api = None
    try:
        print("publishing a model and stream state for the synthetic shop ...", flush=True)
        shop = Shop(settings, prepare_shop(settings, work).lines)
        worker = start_worker(settings, work / "worker.log")
        port = free_port()
        api = start_server("api.main:create_app", settings, port, 1, work / "api.log")
        print(f"worker and API running; {args.trials} trials with {args.background_rate:g} purchases/s of "
              "background load ...", flush=True)
        run = asyncio.run(measure(settings, port, shop, args.trials, args.background_rate, args.poll_ms / 1000))
    finally:
        if api is not None:
            stop_server(api)
        if worker is not None:
            stop_worker(worker)
        local.down()

    done = [t for t in run["trials"] if t["served_ms"] is not None]
    result = {
        "trials": len(run["trials"]), "reflected": len(done), "background_rate": args.background_rate,
        "background_sent": run["background_sent"], "poll_ms": args.poll_ms,
        "served": percentiles([t["served_ms"] for t in done]),
        "state": percentiles([t["state_ms"] for t in done]),
        "target_p99_ms": TARGET_P99_MS, "runs": run["trials"],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"\n{'from the purchase produced to':<44} " + " ".join(f"{'p' + str(p):>8}" for p in PERCENTILES)
          + f" {'max':>8}")
    for name, label in (("state", "its state in Redis (worker)"), ("served", "/recommend without the product")):
        row = result[name]
        print(f"{label:<44} " + " ".join(f"{row[f'p{p}_ms']:>6.0f}ms" for p in PERCENTILES)
              + f" {row['max_ms']:>6.0f}ms")
    print(f"{result['reflected']} of {result['trials']} trials reflected within {GIVE_UP_S:g} s; "
          f"served p99 {result['served']['p99_ms']:.0f} ms (target <= {TARGET_P99_MS:.0f} ms); "
          f"{run['background_sent']:,} background purchases")
    print(f"JSON: {args.out}")


if __name__ == "__main__":
    main()

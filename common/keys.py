"""The Redis key layout. Every key any component reads or writes is built here, under one prefix.

Keys are laid out for a Redis Cluster, and single Redis uses the same layout. A Redis Cluster hashes only the part
of a key between its first `{` and the next `}` (the hash tag) when that part is there, so keys with one tag live
in one slot, which is what a script or MULTI touching them needs:

- every key of one customer carries the customer id as its tag (`...:cust:{c9}:rfm`), so all of a customer's
  state, their A/B exposures and purchases included, is in one slot, and the customers spread over the nodes;
- the state shared by everyone (stream counters, product popularity, the experiments' registry, plans and
  counters, the model pointer) carries the tag SHARED_TAG and lives in one slot;
- a model version's per-customer hashes (top-N lists, segments, cycles) are one hash per slot, tagged so that it
  lives in the slot of the customers it holds (`slot_tag`): a customer's list is on the node of their state.

Neither the prefix nor an id can hold a brace (both are validated), so no other part of a key can act as a tag.
"""

from __future__ import annotations

import binascii
import functools
from dataclasses import dataclass

SHARED_TAG = "{shared}"
SLOTS = 16384
VERSION_PER_CUSTOMER_PARTS = ("topn", "segments", "cycles")  # a version's hashes kept one per slot


def customer_tag(customer_id: str) -> str:
    return "{" + customer_id + "}"


def customer_slot(customer_id: str) -> int:
    """The Redis Cluster slot of the customer's keys: CRC16 (XMODEM) of their tag, as Redis computes it."""
    return binascii.crc_hqx(customer_id.encode(), 0) % SLOTS


def slot_tag(slot: int) -> str:
    """A hash tag whose keys live in `slot`."""
    return "{" + _slot_tags()[slot] + "}"


@functools.cache
def _slot_tags() -> tuple[str, ...]:
    """For each slot, the first number (in hex) whose CRC16 falls in it; about 170k tries, made once."""
    tags: list[str] = [""] * SLOTS
    missing, n = SLOTS, 0
    while missing:
        text = format(n, "x")
        slot = binascii.crc_hqx(text.encode(), 0) % SLOTS
        if not tags[slot]:
            tags[slot], missing = text, missing - 1
        n += 1
    return tuple(tags)


@dataclass(frozen=True)
class KeyLayout:
    prefix: str

    def _k(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    def _shared(self, *parts: str) -> str:
        """A key of the shared slot."""
        return self._k(*parts, SHARED_TAG)

    def _customer(self, customer_id: str, *parts: str) -> str:
        """A key of one customer's slot."""
        return self._k("cust", customer_tag(customer_id), *parts)

    # --- per customer (stream state) ---
    def customer_rfm(self, customer_id: str) -> str:
        """Hash: first_ts, last_ts (epoch seconds), orders, lines, units, monetary_cents."""
        return self._customer(customer_id, "rfm")

    def customer_orders(self, customer_id: str) -> str:
        """Sorted set: order id -> event time, so an order with many lines counts once; trimmed with the guard."""
        return self._customer(customer_id, "order_ids")

    def customer_product_units(self, customer_id: str) -> str:
        """Hash: product id -> units bought."""
        return self._customer(customer_id, "units")

    def customer_product_amount(self, customer_id: str) -> str:
        """Hash: product id -> amount spent (gross incl. VAT)."""
        return self._customer(customer_id, "amount")

    def customer_recent(self, customer_id: str) -> str:
        """Sorted set: product id -> last purchase time, trimmed to the newest N."""
        return self._customer(customer_id, "recent")

    def customer_categories(self, customer_id: str) -> str:
        """Hash: category -> lines bought."""
        return self._customer(customer_id, "cats")

    def customer_applied(self, customer_id: str) -> str:
        """Sorted set: applied event id -> event time; the idempotency guard, trimmed to a retention window."""
        return self._customer(customer_id, "applied")

    def customer_profile(self, customer_id: str) -> str:
        """Hash: region, city, gender, birth_date (YYYY-MM-DD), whichever the customers table has; from the
        customers topic, replaced whole by each newer record."""
        return self._customer(customer_id, "profile")

    def customer_outbox(self, customer_id: str) -> str:
        """Hash: entry id -> JSON of what a script call of this customer adds to the shared state (popularity,
        stream counters, the experiments' counters), kept until the shared step applied it (`stream_app.shared`):
        the two cannot be one script in a cluster, and a redelivered batch finds here what is still owed."""
        return self._customer(customer_id, "outbox")

    def customers_index(self) -> str:
        """Sorted set: customer id -> last purchase time (for pickers and 'latest customers')."""
        return self._shared("customers")

    # --- per product ---
    def product_popularity(self) -> str:
        """Sorted set: product id -> units sold, all time."""
        return self._shared("prod", "pop")

    def product_categories(self) -> str:
        """Hash: product id -> category."""
        return self._shared("prod", "cat")

    def product_catalogue(self) -> str:
        """Hash: product id -> JSON {name, category}, from the products topic (the live catalogue)."""
        return self._shared("prod", "catalogue")

    def product_catalogue_revision(self) -> str:
        """Counter bumped with every catalogue write, so readers reload the catalogue only when it changed."""
        return self._shared("prod", "catalogue", "rev")

    # --- stream bookkeeping ---
    def stream_dead_letters(self) -> str:
        """Sorted set: dead-letter id -> when it was counted (wall time), so a redelivered bad record is counted
        once; trimmed to `dead_letter_keep_days`."""
        return self._shared("stream", "dead_letter_ids")

    def stream_stats(self) -> str:
        """Hash of live counters: processed, dead_lettered, duplicates, last_event_ts, ..."""
        return self._shared("stream", "stats")

    def stream_shared_applied(self) -> str:
        """Sorted set: '<customer>|<entry id>' of the outbox entries the shared step applied -> +inf until the
        customer's outbox let the entry go, then when it did (trimmed after `SHARED_APPLIED_KEEP_S`)."""
        return self._shared("stream", "shared_applied")

    def stream_freshness(self) -> str:
        """List of the newest event-to-Redis ages in ms (producer timestamp to state written), bounded."""
        return self._shared("stream", "freshness")

    def stream_latest(self) -> str:
        """List of the latest purchases as JSON, newest first, bounded."""
        return self._shared("stream", "latest")

    # --- batch ---
    def batch_refit_requested(self) -> str:
        """String: when an admin asked for a refit (the scheduler runs one and deletes it)."""
        return self._shared("batch", "refit_requested")

    # --- model (batch publish) ---
    def model_current(self) -> str:
        """String: the version readers use. Flipped only after a version is completely written."""
        return self._shared("model", "current")

    def model_versions(self) -> str:
        """Sorted set: version -> publish time."""
        return self._shared("model", "versions")

    def model_key(self, version: str, *parts: str) -> str:
        """Anything inside one model version's namespace, e.g. model_key(v, 'topn', customer_id)."""
        return self._k("model", version, *parts)

    def model_card(self, version: str) -> str:
        """String (JSON): version, data window, parameters, offline metrics, EDA and cleaning summaries."""
        return self.model_key(version, "card")

    def model_topn(self, version: str, customer_id: str) -> str:
        """Hash: customer id -> the top-N list in the compact form of `common.toplist` (products, scores, source
        codes), best first; one hash per slot, in the slot of the customers it holds."""
        return self.model_key(version, "topn", slot_tag(customer_slot(customer_id)))

    def model_popular(self, version: str) -> str:
        """String (JSON): the best-seller list (recent window) used for control and cold start."""
        return self.model_key(version, "popular")

    def model_rules(self, version: str) -> str:
        """Hash: antecedent product id -> JSON list of {product_id, support, confidence, lift}."""
        return self.model_key(version, "rules")

    def model_category_rules(self, version: str) -> str:
        """String (JSON): category-level rules, best confidence first."""
        return self.model_key(version, "catrules")

    def model_segments(self, version: str, customer_id: str) -> str:
        """Hash: customer id -> JSON {segment, r, f, m, recency_days, frequency, monetary}; one per slot, like
        `model_topn`."""
        return self.model_key(version, "segments", slot_tag(customer_slot(customer_id)))

    def model_cycles(self, version: str, customer_id: str) -> str:
        """Hash: customer id -> JSON [[product id, [day since the epoch, ...]], ...]: the products they buy again
        and the latest days they bought each (batch.cycles); one per slot, like `model_topn`."""
        return self.model_key(version, "cycles", slot_tag(customer_slot(customer_id)))

    def model_per_customer_pattern(self, version: str, part: str) -> str:
        """Every hash of one per-customer part ('topn', 'segments', 'cycles') of a version."""
        return self.model_key(version, part, "*")

    def model_segment_summary(self, version: str) -> str:
        """String (JSON): size, share and mean R/F/M per segment."""
        return self.model_key(version, "segsummary")

    def model_segment_offers(self, version: str) -> str:
        """Hash: segment -> JSON offer: over-represented products and categories (lift and counts), revenue
        share, suggested action."""
        return self.model_key(version, "offers")

    def model_rfm_cut_points(self, version: str) -> str:
        """String (JSON): the R/F/M quintile edges the segments were scored with, for scoring live RFM."""
        return self.model_key(version, "rfmcuts")

    def model_cohorts(self, version: str) -> str:
        """Hash: cohort key (common.profiles.cohort_key) -> JSON best-seller list of that cohort; only published
        when cohort best-sellers beat the global ones offline."""
        return self.model_key(version, "cohorts")

    def model_products(self, version: str) -> str:
        """Hash: product id -> JSON {name, category}."""
        return self.model_key(version, "products")

    def model_pattern(self, version: str) -> str:
        return self._k("model", version, "*")

    def model_version_keys(self, version: str) -> list[str]:
        """Every key a version can have, found by name rather than by scanning (whose cost grows with the whole
        keyspace, the shop's live state included): its own strings and hashes, and its per-customer hashes in
        every slot, those of slots without customers included (they do not exist)."""
        own = [self.model_card(version), self.model_popular(version), self.model_rules(version),
               self.model_category_rules(version), self.model_segment_summary(version),
               self.model_segment_offers(version), self.model_rfm_cut_points(version), self.model_cohorts(version),
               self.model_products(version)]
        return own + [self.model_key(version, part, slot_tag(slot))
                      for slot in range(SLOTS) for part in VERSION_PER_CUSTOMER_PARTS]

    # --- A/B ---
    def ab_experiments(self) -> str:
        """Sorted set: running experiment name -> its start (the earliest exposure's event time); written by the
        exposures script, read by the purchases script's caller (which experiments to attribute to) and the API.
        Stopping an experiment removes it."""
        return self._shared("ab", "experiments")

    def ab_experiments_revision(self) -> str:
        """Counter moved by every change of the registry (an experiment started or stopped), so the purchases
        script can tell that its caller's list of experiments is stale."""
        return self._shared("ab", "experiments", "rev")

    def ab_ended(self) -> str:
        """Hash: ended experiment name -> JSON {started_at, ended_at, summary}: its final summary, kept after its
        other keys are freed. An ended experiment takes no more exposures."""
        return self._shared("ab", "ended")

    def ab_plans(self) -> str:
        """Hash: experiment name -> JSON `experiments.plan.Plan` of every experiment started with `recsys ab start`
        (running or ended): its arms, split, salt and start. Experiments without one have the two default arms."""
        return self._shared("ab", "plans")

    def ab_live_plan(self) -> str:
        """String: JSON plan of the running managed experiment, which `/recommend` serves (at most one; absent:
        the settings' experiment). Read in every request's round trip, so it holds the plan itself."""
        return self._shared("ab", "live")

    def ab_group_counters(self, experiment: str, group: str) -> str:
        """Hash: exposures, exposed_customers, converted_items, converted_customers, revenue_cents,
        revenue_sq_cents2 (the sum over customers of their attributed revenue squared, for the variance of revenue
        per exposed customer), and CUPED's and the bandit's sums, for one group."""
        return self._shared("ab", experiment, group, "counters")

    def ab_daily(self, experiment: str, group: str) -> str:
        """Hash: 'exposed:<epoch day>' / 'converted:<epoch day>' -> customers first exposed / first converted that
        day (event time), for conversion over time."""
        return self._shared("ab", experiment, group, "daily")

    def ab_customer_state(self, experiment: str, customer_id: str) -> str:
        """Hash: group (as the customer's first exposure said; their purchases are attributed to it), revenue
        (attributed, cents), pre (CUPED's pre-period spend before their first exposure, cents), propensity (the
        share their arm had when a bandit assigned them), exposed_at and converted_at (their earliest exposure and
        conversion, event time, so the daily series counts them on the right day whatever order events arrive
        in). Freed when the experiment stops."""
        return self._k("ab", experiment, "cust", customer_tag(customer_id), "state")

    def ab_customer_experiments(self, customer_id: str) -> str:
        """Set: the experiments the customer has exposures in, so their purchases find every experiment to
        attribute to in their own slot."""
        return self._k("ab", "cust", customer_tag(customer_id), "experiments")

    def ab_bandit_weights(self, experiment: str) -> str:
        """List: JSON {interval, at, shares, exposed, converted} per re-weighting of a bandit's split, oldest
        first (the start's split first)."""
        return self._shared("ab", experiment, "weights")

    def ab_customer_requests(self, experiment: str, customer_id: str) -> str:
        """Sorted set: applied exposure request id -> event time, one per customer (whose exposures arrive in order,
        on one partition); the exposures' idempotency guard, trimmed to the lateness window, expiring with the
        customer's exposures."""
        return self._k("ab", experiment, "cust", customer_tag(customer_id), "requests")

    def ab_customer_exposures(self, experiment: str, customer_id: str) -> str:
        """Sorted set: 'product|request id' -> exposure time, for attribution."""
        return self._k("ab", experiment, "cust", customer_tag(customer_id), "exposed")

    def ab_customer_purchases(self, customer_id: str) -> str:
        """Sorted set: 'product|event id|cents' -> purchase time, so an exposure applied after the purchases
        that follow it still finds them. One per customer, not per experiment: a purchase applied before an
        experiment's first exposure reaches the stream must still be found by it."""
        return self._k("ab", "cust", customer_tag(customer_id), "bought")

    def ab_customer_converted(self, experiment: str, customer_id: str) -> str:
        """Sorted set: purchase event id -> purchase time, of purchases already counted as conversions (each counts
        once, whichever side saw it); trimmed and expiring with the customer's exposures."""
        return self._k("ab", experiment, "cust", customer_tag(customer_id), "converted_ids")

    def ab_experiment_pattern(self, experiment: str) -> str:
        """Every key of one experiment (what stopping it frees, once its summary is kept)."""
        return self._k("ab", experiment, "*")

    def all_keys_pattern(self) -> str:
        return self._k("*")

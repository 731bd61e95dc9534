import pytest

from common.key_migration import new_name
from common.keys import KeyLayout

KEYS = KeyLayout("shop")


def every_key() -> list[str]:
    """One key of each kind the layout builds, for customer c-1.x, experiment exp.1 and arm ctl, and the renamed
    names of the old per-customer A/B hashes and sets (which the migration's second step splits)."""
    keys = [KEYS.customer_rfm("c-1.x"), KEYS.customer_orders("c-1.x"), KEYS.customer_product_units("c-1.x"),
            KEYS.customer_product_amount("c-1.x"), KEYS.customer_recent("c-1.x"), KEYS.customer_categories("c-1.x"),
            KEYS.customer_applied("c-1.x"), KEYS.customer_profile("c-1.x"), KEYS.customers_index(),
            KEYS.product_popularity(), KEYS.product_categories(), KEYS.product_catalogue(),
            KEYS.product_catalogue_revision(), KEYS.stream_dead_letters(), KEYS.stream_stats(),
            KEYS.stream_freshness(), KEYS.stream_latest(), KEYS.batch_refit_requested(), KEYS.model_current(),
            KEYS.model_versions(), KEYS.ab_experiments(), KEYS.ab_experiments_revision(), KEYS.ab_ended(),
            KEYS.ab_plans(), KEYS.ab_live_plan(), KEYS.ab_bandit_weights("exp.1"),
            KEYS.ab_customer_requests("exp.1", "c-1.x"),
            KEYS.ab_customer_exposures("exp.1", "c-1.x"), KEYS.ab_customer_purchases("c-1.x"),
            KEYS.ab_customer_converted("exp.1", "c-1.x")]
    split_later = [f"shop:ab:exp.1:{name}:{{shared}}" for name in ("groups", "revenue", "pre", "propensity")] + [
        f"shop:ab:exp.1:ctl:{name}:{{shared}}" for name in ("exposed", "converted", "first")]
    return [*keys, KEYS.ab_group_counters("exp.1", "ctl"), KEYS.ab_daily("exp.1", "ctl"), *split_later]


def old_layout(key: str) -> str:
    """The name the key had before hash tags."""
    return key.replace(":{shared}", "").replace("{", "").replace("}", "")


@pytest.mark.parametrize("key", every_key())
def test_every_old_name_maps_to_the_layouts_name(key: str) -> None:
    assert old_layout(key) != key
    assert new_name("shop", old_layout(key)) == key


@pytest.mark.parametrize("key", every_key())
def test_a_key_in_the_new_layout_is_left_alone(key: str) -> None:
    assert new_name("shop", key) is None


@pytest.mark.parametrize("key", ["shop:model:v3:topn", "shop:model:v3:card", "other:cust:c1:rfm", "shopx:stream:stats",
                                 "shop:unknown:thing"])
def test_model_versions_other_prefixes_and_strangers_are_left_alone(key: str) -> None:
    assert new_name("shop", key) is None

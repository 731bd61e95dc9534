import pytest
from pydantic import ValidationError
from redis.crc import key_slot

from common.keys import KeyLayout, customer_slot, slot_tag
from common.settings import Settings


def test_keys_live_under_the_prefix() -> None:
    keys = KeyLayout("t1")
    assert keys.customer_rfm("c9") == "t1:cust:{c9}:rfm"
    assert keys.model_key("v3", "topn", "c9") == "t1:model:v3:topn:c9"
    assert keys.all_keys_pattern() == "t1:*"


def test_different_prefixes_never_share_keys() -> None:
    assert KeyLayout("a").product_popularity() != KeyLayout("b").product_popularity()


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECSYS_BROKER_URL", "kafka://127.0.0.1:29999")
    monkeypatch.setenv("RECSYS_REDIS_URL", "redis://127.0.0.1:26379/2")
    monkeypatch.setenv("RECSYS_KEY_PREFIX", "shop2")
    settings = Settings()
    assert settings.bootstrap_servers == "127.0.0.1:29999"
    assert (settings.redis_host, settings.redis_port) == ("127.0.0.1", 26379)
    assert settings.key_prefix == "shop2"


@pytest.mark.parametrize("prefix", ["a:b", "a{b", "a}"])
def test_prefix_may_not_contain_the_separator_or_a_brace(prefix: str) -> None:
    with pytest.raises(ValidationError):
        Settings(key_prefix=prefix)


def hash_tag(key: str) -> str:
    """What a Redis Cluster hashes: the part between the first '{' and the next '}', when not empty."""
    start = key.find("{")
    end = key.find("}", start + 1)
    return key[start + 1:end] if start >= 0 and end > start + 1 else key


def test_every_key_of_a_customer_hashes_their_id_and_every_shared_key_one_tag() -> None:
    keys = KeyLayout("t1")
    mine = [keys.customer_rfm("c9"), keys.customer_orders("c9"), keys.customer_product_units("c9"),
            keys.customer_product_amount("c9"), keys.customer_recent("c9"), keys.customer_categories("c9"),
            keys.customer_applied("c9"), keys.customer_profile("c9"), keys.ab_customer_purchases("c9"),
            keys.ab_customer_requests("x", "c9"), keys.ab_customer_exposures("x", "c9"),
            keys.ab_customer_converted("x", "c9")]
    assert {hash_tag(key) for key in mine} == {"c9"}
    shared = [keys.product_popularity(), keys.stream_stats(), keys.stream_latest(), keys.customers_index(),
              keys.ab_experiments(), keys.ab_experiments_revision(), keys.ab_ended(), keys.ab_plans(),
              keys.ab_live_plan(), keys.ab_group_counters("x", "a"), keys.ab_daily("x", "a"), keys.model_current(),
              keys.model_versions(), keys.product_catalogue(), keys.product_catalogue_revision()]
    assert {hash_tag(key) for key in shared} == {"shared"}


def test_the_live_experiment_cannot_take_a_replay_name() -> None:
    with pytest.raises(ValueError, match="replay-"):
        Settings(ab_experiment="replay-2011-11-09")
    assert Settings(ab_experiment="rec-v2").ab_experiment == "rec-v2"


def test_the_ui_language_and_currency(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECSYS_UI_LANGUAGE", "es")
    monkeypatch.setenv("RECSYS_CURRENCY", "")
    settings = Settings()
    assert (settings.ui_language, settings.currency) == ("es", None)  # empty: the model's mapping decides
    monkeypatch.setenv("RECSYS_CURRENCY", "gbp")
    with pytest.raises(ValidationError, match="currency"):
        Settings()
    monkeypatch.setenv("RECSYS_UI_LANGUAGE", "fr")
    monkeypatch.setenv("RECSYS_CURRENCY", "GBP")
    with pytest.raises(ValidationError, match="ui_language"):
        Settings()


def test_the_settings_pull_in_no_statistics() -> None:
    """Every process imports the settings: they stay light (scipy's import alone took about 0.7 s here)."""
    import subprocess
    import sys

    probe = "import sys, common.settings; print(sorted(m for m in ('scipy', 'sklearn', 'pandas') if m in sys.modules))"
    found = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert found.strip() == "[]"


@pytest.mark.parametrize("customer", ["c9", "abc-1.x", "0001", "Z"])
def test_a_customers_model_lists_live_in_the_slot_of_their_state(customer: str) -> None:
    keys = KeyLayout("t1")
    slot = key_slot(keys.customer_rfm(customer).encode())
    assert customer_slot(customer) == slot
    assert {key_slot(key.encode()) for key in (keys.model_topn("v1", customer), keys.model_segments("v1", customer),
                                                keys.model_cycles("v1", customer))} == {slot}


def test_every_slot_has_a_tag() -> None:
    assert [key_slot(f"x{slot_tag(slot)}".encode()) for slot in range(0, 16384, 97)] == list(range(0, 16384, 97))

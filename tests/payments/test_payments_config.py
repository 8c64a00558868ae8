"""Products name their Stripe price in site.toml; the Stripe secrets come from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from shortcodes.errors import ConfigError, SettingsError
from shortcodes.host import create_app
from shortcodes.membership.config import parse_config
from shortcodes.membership.site import Product
from shortcodes.payments.stripe_settings import StripeSettings, stripe_settings
from tests.support.host import app_config, store
from tests.support.sites import demo_copy

TAGS = '[tags]\n"All Access" = "membership"\n'


def test_a_bundle_and_a_subscription_read_their_stripe_terms() -> None:
    text = (
        TAGS
        + '[products.bundle]\ncredits = 50\nstripe_price = "price_1Bundle50"\n'
        + '[products.monthly]\ncredits = 50\ntag = "All Access"\n'
        + 'stripe_price = "price_1Monthly"\ninterval = "month"\n'
    )
    products = parse_config(text).host.products
    assert products["bundle"] == Product(
        "bundle", "bundle", 50, "_Credits", None, "", "price_1Bundle50"
    )
    assert products["monthly"] == Product(
        "monthly", "monthly", 50, "_Credits", "All Access", "", "price_1Monthly", "month"
    )
    assert (products["bundle"].is_subscription, products["monthly"].is_subscription) == (
        False,
        True,
    )


BAD = [
    pytest.param(
        '[products.p]\ncredits = 5\nstripe_price = "prod_123456"\n',
        "3:1: products.p.stripe_price: a Stripe price id looks like 'price_1AbC…', got 'prod_123456'",
        id="a product id, not a price",
    ),
    pytest.param(
        "[products.p]\ncredits = 5\nstripe_price = 42\n",
        "3:1: products.p.stripe_price: a Stripe price id looks like 'price_1AbC…', got 42",
        id="a number",
    ),
    pytest.param(
        '[products.p]\ncredits = 5\nstripe_price = "price_1X"\ninterval = "fortnight"\n',
        "4:1: products.p.interval: must be one of day, week, month, year, got 'fortnight'",
        id="unknown interval",
    ),
    pytest.param(
        '[products.p]\ncredits = 5\ninterval = "month"\n',
        "1:1: products.p: a subscription (interval) is sold through Stripe: give it stripe_price",
        id="subscription without a price",
    ),
]


@pytest.mark.parametrize(("text", "problem"), BAD)
def test_check_refuses_a_bad_stripe_term_with_its_line_and_column(text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    assert str(info.value) == f"site.toml:{problem}"


def test_stripe_settings_are_empty_unless_given() -> None:
    assert stripe_settings({}) == StripeSettings("", "", "")
    assert not stripe_settings({}).can_sell
    assert not stripe_settings({}).can_receive


def test_stripe_settings_keep_the_secrets_and_trim_the_api_base() -> None:
    given = {
        "STRIPE_SECRET_KEY": "sk_test_123",
        "STRIPE_WEBHOOK_SECRET": "whsec_abc",
        "STRIPE_API_BASE": "http://127.0.0.1:8420/",
    }
    assert stripe_settings(given) == StripeSettings(
        "sk_test_123", "whsec_abc", "http://127.0.0.1:8420"
    )


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (
            "STRIPE_SECRET_KEY",
            "pk_test_1",
            "STRIPE_SECRET_KEY must be a Stripe secret key (sk_… or rk_…)",
        ),
        (
            "STRIPE_WEBHOOK_SECRET",
            "secret",
            "STRIPE_WEBHOOK_SECRET must be an endpoint signing secret (whsec_…)",
        ),
        (
            "STRIPE_API_BASE",
            "localhost:1",
            "STRIPE_API_BASE: needs an absolute http(s) url, got 'localhost:1'",
        ),
    ],
)
def test_a_malformed_stripe_setting_is_refused_by_name(key: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError) as info:
        stripe_settings({key: value})
    assert str(info.value) == message


def test_the_host_reads_the_stripe_secrets_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHORTCODES_STRIPE_SECRET_KEY", "sk_test_env")
    monkeypatch.setenv("SHORTCODES_STRIPE_WEBHOOK_SECRET", "whsec_12345")
    site = demo_copy(tmp_path / "site", demo_payments=False)
    app = create_app(app_config(tmp_path / "instance", SITE_DIR=site, SEED=False))
    try:
        assert app.extensions["shortcodes"].stripe == StripeSettings(
            "sk_test_env", "whsec_12345", ""
        )
    finally:
        store(app).close()

"""Payments test fixtures: the demo site (the host tests' fixtures, from
``tests/support/demo_fixtures.py``), and a site selling through Stripe on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import Engine

from shortcodes.store import schema
from tests.support.backends import empty_database_url, worker_schema
from tests.support.demo_fixtures import app, client, template_db, visitor  # noqa: F401
from tests.support.host import app_config, verified_app
from tests.support.sites import demo_copy
from tests.support.stripe_events import WEBHOOK_SECRET

#: Products sold through Stripe, added to a copy of the demo site.
STRIPE_PRODUCTS = """
[products.bundle-100]
title = "100 credits"
credits = 100
price = "$10"
stripe_price = "price_bundle100"

[products.monthly-50]
title = "Monthly: 50 credits and All Access"
credits = 50
tag = "All Access"
price = "$9/month"
stripe_price = "price_monthly50"
interval = "month"
"""


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[tuple[Engine, str]]:
    """An engine on this worker's own payments schema and the URL selecting it."""
    yield from worker_schema("payments")


#: A page with the buy, subscribe and manage buttons of the Stripe products.
BUY_PAGE = """---
title: Buy through Stripe
layout: page
---
[checkout_button product="bundle-100" button_text="Buy 100 credits"]

[checkout_button product="monthly-50" button_text="Subscribe"]

[checkout_button product="credits-50" button_text="Buy 50 credits"]

[manage_subscription]
"""


@pytest.fixture
def stripe_site(tmp_path: Path) -> Path:
    """The demo site without the demo checkout, selling a bundle and a subscription via Stripe
    (``/buy`` has their buttons)."""
    site = demo_copy(tmp_path / "site", demo_payments=False, extra=STRIPE_PRODUCTS)
    (site / "pages" / "buy.md").write_text(BUY_PAGE, encoding="utf-8")
    return site


@pytest.fixture
def stripe_api() -> dict[str, str]:
    """More app settings for ``stripe_app`` (a module that talks to an API overrides this)."""
    return {}


@pytest.fixture
def stripe_app(
    backend: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    stripe_site: Path,
    stripe_api: dict[str, str],
) -> Iterator[Flask]:
    """A Stripe-selling site on an empty database of ``backend`` (SQLite and PostgreSQL); the
    ledger must verify when the test ends."""
    url = empty_database_url(backend, request, tmp_path, schema.metadata.sorted_tables)
    config = app_config(
        tmp_path / "instance",
        SITE_DIR=stripe_site,
        DATABASE_URL=url,
        SEED=False,
        STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
        **stripe_api,
    )
    yield from verified_app(config)

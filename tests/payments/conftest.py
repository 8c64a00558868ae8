"""Payments test fixtures: the demo site (as the host tests have it), and a site selling through
Stripe on SQLite and PostgreSQL.

The demo site: the host tests' fixtures, on a fresh, seeded SQLite database per test.

Migrating and seeding (five password hashes) happens once per session in a template database;
each test gets its own copy, its own instance folder and its own Flask app, and the ledger must
still verify when the test ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine

from shortcodes.host import create_app
from shortcodes.store import schema
from tests.support.backends import empty_database_url, worker_schema
from tests.support.host import app_config, make_app, store, verified_app
from tests.support.sites import demo_copy
from tests.support.stripe_events import WEBHOOK_SECRET
from tests.support.visitors import Visitor


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated database seeded with the demo contacts, copied by every test."""
    instance = tmp_path_factory.mktemp("template-instance")
    app = create_app(app_config(instance))
    store(app).close()  # disposing the pool checkpoints the WAL into the file
    return instance / "shortcodes.db"


@pytest.fixture
def app(template_db: Path, tmp_path: Path) -> Iterator[Flask]:
    """The demo site on a fresh seeded database; the ledger must verify afterwards."""
    application = make_app(template_db, tmp_path / "instance")
    yield application
    report = store(application).verify()
    store(application).close()
    assert report.ok, report.problems


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client of ``app``."""
    return app.test_client()


@pytest.fixture
def visitor(client: FlaskClient) -> Visitor:
    """An anonymous visitor with its own cookie jar."""
    return Visitor(client)


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

"""Host test helpers: app factories on a copied, seeded database, logged-in visitors, row counts."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from flask import Flask

from shortcodes.host import create_app
from shortcodes.store.facade import Store
from tests.support.db import row_counts
from tests.support.paths import SITE
from tests.support.visitors import Visitor

SECRET = "host-tests-secret-key"


def app_config(instance: Path, **extra: Any) -> dict[str, Any]:
    """The settings of a test app whose database lives in ``instance``."""
    return {
        "TESTING": True,
        "SECRET_KEY": SECRET,
        "INSTANCE_PATH": instance,
        "SITE_DIR": SITE,
        "DATABASE_URL": f"sqlite:///{instance / 'shortcodes.db'}",
        **extra,
    }


def store(app: Flask) -> Store:
    """The store of a host app."""
    found: Store = app.extensions["shortcodes"].store
    return found


def make_app(template_db: Path, instance: Path, **extra: Any) -> Flask:
    """A host app on a private copy of the seeded template database."""
    instance.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template_db, instance / "shortcodes.db")
    return create_app(app_config(instance, **extra))


def verified_app(config: dict[str, Any]) -> Iterator[Flask]:
    """The app of ``config`` with its site's tags created; its ledger must verify afterwards."""
    app = create_app(config)
    store(app).sync_tags()
    yield app
    report = store(app).verify()
    store(app).close()
    assert report.ok, report.problems


def logged_in(app: Flask, email: str) -> Visitor:
    """A new visitor logged in as ``email``."""
    who = Visitor(app.test_client())
    response = who.login(email)
    assert response.status_code == 303, response.get_data(as_text=True)
    return who


def counts(app: Flask) -> dict[str, int]:
    """How many ledger entries, runs, webhook operations and tag holdings the database holds."""
    from shortcodes.store import schema

    tables = (schema.ledger_entries, schema.actionset_runs, schema.operations, schema.contact_tags)
    return row_counts(store(app), *tables)

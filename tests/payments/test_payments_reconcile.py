"""``shortcodes stripe reconcile``: events the webhook never received are listed from a real
localstripe process and applied once; a second run applies nothing (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shortcodes.cli import main
from shortcodes.membership.config import load_config
from shortcodes.payments import records
from shortcodes.store import schema
from shortcodes.store.facade import Store
from tests.support.backends import empty_database_url
from tests.support.stripe_server import API_KEY, LocalStripe


@pytest.fixture
def localstripe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalStripe]:
    """localstripe with no webhook endpoint configured: every delivery is "missed"; the CLI's
    environment points at it."""
    with LocalStripe(tmp_path / "localstripe") as server:
        monkeypatch.setenv("SHORTCODES_STRIPE_SECRET_KEY", API_KEY)
        monkeypatch.setenv("SHORTCODES_STRIPE_API_BASE", server.api)
        yield server


@pytest.fixture
def db(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, stripe_site: Path
) -> Iterator[tuple[str, Store]]:
    """An empty database of ``backend`` with Ann, customer ``cus_…`` of localstripe later."""
    url = empty_database_url(backend, request, tmp_path, schema.metadata.sorted_tables)
    with Store.from_url(url, site=load_config(stripe_site).actions) as store:
        store.sync_tags()
        store.add_contact("ann@example.com", "Ann")
        yield url, store
        report = store.verify()
        assert report.ok, report.problems


def _missed_subscription(localstripe: LocalStripe, store: Store) -> None:
    """Ann subscribes in localstripe while our webhook endpoint is unreachable."""
    client = localstripe.client()
    ann = store.contact_id("ann@example.com")
    customer = client.v1.customers.create(params={"email": "ann@example.com"})
    store.run_in_transaction(lambda tx: records.record_customer(tx, ann, customer.id))
    client.v1.plans.create(
        params={
            "id": "price_monthly50",
            "amount": 900,
            "currency": "usd",
            "interval": "month",
            "product": {"name": "Monthly"},
        }
    )
    card = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}
    method = client.v1.payment_methods.create(params={"type": "card", "card": card})
    client.v1.payment_methods.attach(method.id, params={"customer": customer.id})
    client.v1.customers.update(
        customer.id, params={"invoice_settings": {"default_payment_method": method.id}}
    )
    client.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"plan": "price_monthly50"}]}
    )


def test_reconcile_applies_missed_events_once_and_a_second_run_changes_nothing(
    localstripe: LocalStripe,
    db: tuple[str, Store],
    stripe_site: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, store = db
    _missed_subscription(localstripe, store)
    assert store.balance("ann@example.com") == 0
    argv = [
        "stripe",
        "reconcile",
        "--since",
        "1h",
        "--site",
        str(stripe_site),
        "--database-url",
        url,
    ]
    assert main(argv) == 0
    first = capsys.readouterr().out.strip().splitlines()[-1]
    assert (
        store.balance("ann@example.com"),
        store.get_contact("ann@example.com").has_tag("All Access"),
    ) == (50, True)
    assert main(argv) == 0
    second = capsys.readouterr().out.strip().splitlines()[-1]
    assert store.balance("ann@example.com") == 50
    listed = int(first.split()[0])
    assert (
        first == f"{listed} events: 2 applied, {listed - 2} ignored, 0 already applied, 0 refused"
    )
    assert second == f"{listed} events: 0 applied, 0 ignored, {listed} already applied, 0 refused"


@pytest.mark.parametrize(
    ("since", "message"),
    [
        ("40d", "error: --since: Stripe keeps events for 30 days; use 30d or less\n"),
        (
            "soon",
            "error: --since: a duration is a positive whole number and a unit s, m (minutes), h, d, "
            "w, mo (months) or y, like '14d' or '4mo'; got 'soon'\n",
        ),
    ],
)
def test_reconcile_refuses_a_bad_since(
    since: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["stripe", "reconcile", "--since", since]) == 1
    assert capsys.readouterr().err == message

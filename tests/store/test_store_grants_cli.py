"""The CLI for grants on both databases: ``credits add`` with its grant options and decimal
amounts, ``ledger grants EMAIL``, and ``ledger verify`` over grants."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import update

from shortcodes.membership.actionsets import SiteActions
from shortcodes.membership.config import parse_config
from shortcodes.store import Store
from shortcodes.store import schema as db
from tests.store.conftest import Cli
from tests.store.test_store_grants import GRANTS_TOML
from tests.support.clock import MovableClock
from tests.support.db import dump


@pytest.fixture(scope="module")
def site_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The grants site (a Cash field with two decimals) as a file for the CLI."""
    path = tmp_path_factory.mktemp("grants-site") / "site.toml"
    path.write_text(GRANTS_TOML, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def site() -> SiteActions:
    """The same site for the ``store`` fixture."""
    return parse_config(GRANTS_TOML, "site.toml").actions


def test_credits_add_with_category_expiry_and_start_then_ledger_grants_lists_them(
    cli: Cli, clock: MovableClock
) -> None:
    cli("contacts", "add", "ann@example.com")
    assert cli("credits", "add", "ann@example.com", "10")[1] == "_Credits: 10\n"
    code, out, _ = cli("credits", "add", "ann@example.com", "5", "--category", "promotional",
                       "--expires-in", "30d", "--reason", "welcome bonus")  # fmt: skip
    assert (code, out) == (0, "_Credits: 15\n")
    code, out, _ = cli("credits", "add", "ann@example.com", "7", "--starts-in", "14d")
    assert (code, out) == (0, "_Credits: 15\n")  # pending: not in the balance yet
    code, out, _ = cli("ledger", "grants", "ann@example.com")
    lines = [line.split() for line in out.splitlines()]
    assert code == 0
    assert [(w[1], w[2], w[3], w[4]) for w in lines] == [
        ("_Credits", "7/7", "pending", "admin/paid"),
        ("_Credits", "5/5", "active", "admin/promotional"),
        ("_Credits", "10/10", "active", "admin/paid"),
    ]
    assert "never expires" in out.splitlines()[2]
    assert "welcome bonus" in out.splitlines()[1]
    assert cli("credits", "debit", "ann@example.com", "6")[1] == "_Credits: 9\n"
    out = cli("ledger", "grants", "ann@example.com", "--field", "_Credits")[1]
    assert [line.split()[2] for line in out.splitlines()] == ["7/7", "9/10"]  # promo spent first
    assert len(cli("ledger", "grants", "ann@example.com", "--all")[1].splitlines()) == 3
    assert cli("ledger", "verify") == (0, "checked 1 balances and 3 entries: ok\n", "")


def test_credits_add_takes_decimal_amounts_on_a_field_with_decimals(cli: Cli) -> None:
    cli("contacts", "add", "ann@example.com")
    assert cli("credits", "add", "ann@example.com", "2.5", "--field", "Cash")[1] == "Cash: 2.50\n"
    assert cli("credits", "debit", "ann@example.com", "0.25", "--field", "cash")[1] == (
        "Cash: 2.25\n"
    )
    assert "2.25/2.50" in cli("ledger", "grants", "ann@example.com")[1]
    code, _, err = cli("credits", "add", "ann@example.com", "2.555", "--field", "Cash")
    assert (code, err) == (
        1,
        "error: an amount is a number with at most 2 decimals above 0, got '2.555'\n",
    )


def test_ledger_verify_names_a_grant_that_disagrees(cli: Cli, db_url: str) -> None:
    cli("contacts", "add", "ann@example.com")
    cli("credits", "add", "ann@example.com", "10")
    with Store.from_url(db_url) as store, store.engine.begin() as conn:
        conn.execute(update(db.credit_grants).values(remaining=4))
    code, out, _ = cli("ledger", "verify")
    assert code == 1
    assert "contact 1 _Credits: balance is 10 but its active grants hold 4" in out
    with Store.from_url(db_url) as store, store.engine.begin() as conn:
        conn.execute(update(db.credit_grants).values(remaining=10))


def test_ledger_grants_of_an_unknown_contact_is_an_error_and_writes_nothing(
    cli: Cli, db_url: str
) -> None:
    with Store.from_url(db_url) as store:
        before = dump(store)
        code, _, err = cli("ledger", "grants", "nobody@example.com")
        assert (code, err) == (1, "error: no contact 'nobody@example.com'\n")
        assert dump(store) == before

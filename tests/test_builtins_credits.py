"""[credit_history] and [credit_grants]: ledger entries, grants and debts from the context.

The host puts the entries in ``ctx.extra["credit_history"]`` (here, real ``Entry`` objects of
the store and plain mappings); rendering never queries anything.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from bs4 import BeautifulSoup

from shortcodes import Contact, Context, Environment
from shortcodes.store.ledger import Entry

ANN = Contact(7, "ann@example.com", fields={"_Credits": 60, "Points": 5})
T0 = datetime(2026, 1, 1, 12, 0)


def entry(
    n: int, delta: int, after: int, reason: str, field: str = "_Credits", contact_id: int = 7
) -> Entry:
    """A ledger entry ``n`` hours after T0."""
    return Entry(
        n, contact_id, field, delta, after, reason, "visitor", "7", T0 + timedelta(hours=n)
    )


HISTORY = [
    entry(1, 100, 100, "Welcome credits"),
    entry(2, -50, 50, "Course B"),
    entry(3, 10, 60, "Monthly <bonus>"),
    entry(4, 5, 5, "Referral", field="Points"),
    entry(5, 999, 999, "Someone else's", contact_id=8),
]


@pytest.fixture(scope="module")
def env() -> Environment:
    """An environment with the builtins."""
    return Environment()


def rows(html: str) -> list[list[str]]:
    """The table body as text cells."""
    soup = BeautifulSoup(html, "html.parser")
    return [[td.get_text() for td in tr.find_all("td")] for tr in soup.select("tbody tr")]


def test_history_is_newest_first_for_the_credit_field(env: Environment) -> None:
    html = env.render("[credit_history]", Context(contact=ANN, extra={"credit_history": HISTORY}))
    assert rows(html) == [
        ["2026-01-01", "+10", "60", "Monthly <bonus>"],
        ["2026-01-01", "-50", "50", "Course B"],
        ["2026-01-01", "+100", "100", "Welcome credits"],
    ]


def test_history_never_shows_another_contacts_entries(env: Environment) -> None:
    html = env.render(
        "[credit_history limit=0]", Context(contact=ANN, extra={"credit_history": HISTORY})
    )
    assert "Someone else" not in str(html)


def test_limit_and_field(env: Environment) -> None:
    ctx = Context(contact=ANN, extra={"credit_history": HISTORY})
    assert len(rows(env.render('[credit_history limit="1"]', ctx))) == 1
    assert rows(env.render('[credit_history field="points"]', ctx)) == [
        ["2026-01-01", "+5", "5", "Referral"]
    ]


def test_reasons_are_escaped(env: Environment) -> None:
    html = env.render("[credit_history]", Context(contact=ANN, extra={"credit_history": HISTORY}))
    assert "<bonus>" not in str(html)
    assert "&lt;bonus&gt;" in str(html)


def test_mapping_entries_are_accepted(env: Environment) -> None:
    history = [
        {
            "field": "_Credits",
            "delta": 3,
            "balance_after": 63,
            "reason": "Gift",
            "created_at": "2026-02-01",
        }
    ]
    html = env.render("[credit_history]", Context(contact=ANN, extra={"credit_history": history}))
    assert rows(html) == [["2026-02-01", "+3", "63", "Gift"]]
    assert BeautifulSoup(html, "html.parser").select_one("td.credit") is not None


def test_no_entries_says_so(env: Environment) -> None:
    html = env.render("[credit_history]", Context(contact=ANN))
    assert "No credit history yet." in str(html)


def test_visitors_see_nothing(env: Environment) -> None:
    assert (
        str(
            env.render(
                "[credit_history][credit_balance]", Context(extra={"credit_history": HISTORY})
            )
        )
        == ""
    )


GRANTS = [
    {"contact_id": 7, "field": "_Credits", "remaining": 4, "source": "purchase",
     "category": "paid", "status": "active", "expires_at": None},
]  # fmt: skip


def grants_page(env: Environment, debts: list[dict[str, object]], grants: object = ()) -> str:
    extra = {"credit_grants": list(grants), "credit_debts": debts}
    return str(env.render("[credit_grants]", Context(contact=ANN, extra=extra)))


def test_credit_grants_says_what_the_contact_owes_above_the_grants(env: Environment) -> None:
    html = grants_page(env, [{"contact_id": 7, "field": "_Credits", "owed": 85}], GRANTS)
    soup = BeautifulSoup(html, "html.parser")
    assert [p.get_text() for p in soup.select("p.credit-debt")] == [
        "You owe 85 credits: the next credits you get pay this first."
    ]
    assert rows(html) == [["4", "purchase", "paid", "never"]]
    assert html.index("credit-debt") < html.index("credit-grants")


def test_a_debt_without_grants_replaces_no_credits_yet(env: Environment) -> None:
    html = grants_page(env, [{"contact_id": 7, "field": "_credits", "owed": "0.75"}])
    assert BeautifulSoup(html, "html.parser").get_text() == (
        "You owe 0.75 credits: the next credits you get pay this first."
    )


@pytest.mark.parametrize(
    "debts",
    [
        [{"contact_id": 8, "field": "_Credits", "owed": 85}],  # someone else's
        [{"contact_id": 7, "field": "Points", "owed": 85}],  # another field
        [{"contact_id": 7, "field": "_Credits", "owed": 0}],  # nothing owed
    ],
)
def test_no_debt_of_this_contact_and_field_shows_none(
    env: Environment, debts: list[dict[str, object]]
) -> None:
    assert grants_page(env, debts) == '<p class="credit-grants-empty">No credits yet.</p>'


def test_a_debt_amount_is_escaped(env: Environment) -> None:
    html = grants_page(env, [{"contact_id": 7, "field": "_Credits", "owed": "<b>9</b>"}])
    assert "<b>" not in html
    assert "&lt;b&gt;9&lt;/b&gt;" in html

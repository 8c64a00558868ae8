"""The admin console: contacts (search, tag filter, pages), a contact's page and its changes
(each in the ledger or the audit trail with the admin as actor), logs, ledger, login locks."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from flask import Blueprint, Flask
from sqlalchemy import select

from shortcodes.membership.signing import signed_headers
from shortcodes.store import schema
from tests.support.host import counts, logged_in, make_app, store
from tests.support.visitors import Visitor

POOR = 3  # the seeded poor@example.com


@pytest.fixture
def admin(app: Flask) -> Visitor:
    """The seeded admin, logged in."""
    return logged_in(app, "admin@example.com")


def audit_rows(app: Flask) -> list[tuple[str, str, str, int | None, dict[str, object]]]:
    """(actor kind, actor id, action, contact, detail) of every audit row, oldest first."""
    t = schema.audit_log
    with store(app).engine.connect() as conn:
        rows = conn.execute(select(t).order_by(t.c.id)).all()
    return [(r.actor_kind, r.actor_id, r.action, r.contact_id, r.detail) for r in rows]


def cells(html: str, table: str) -> list[list[str]]:
    """The text of each data row of the table with class ``table``."""
    found = BeautifulSoup(html, "html.parser").find("table", class_=table)
    assert found is not None, table
    return [[td.get_text(" ", strip=True) for td in tr.find_all("td")] for tr in found("tr")[1:]]


def test_the_contact_list_searches_by_name_or_email_and_filters_by_tag(
    app: Flask, admin: Visitor
) -> None:
    rows = cells(admin.get("/admin/contacts?q=POOR"), "admin-contacts")
    assert [r[1] for r in rows] == ["poor@example.com"]
    owners = cells(admin.get("/admin/contacts?tag=owns+course+b"), "admin-contacts")
    assert [r[1] for r in owners] == ["owner@example.com"]
    assert cells(admin.get("/admin/contacts?q=100%25"), "admin-contacts") == []  # % is literal


def test_the_contact_list_comes_in_pages_of_fifty(app: Flask, admin: Visitor) -> None:
    for n in range(55):
        store(app).add_contact(f"bulk{n:02d}@example.com", f"Bulk {n}")
    first = admin.get("/admin/contacts?q=bulk")
    assert len(cells(first, "admin-contacts")) == 50
    assert "Page 1 of 2" in first
    second = cells(admin.get("/admin/contacts?q=bulk&page=2"), "admin-contacts")
    assert [r[1] for r in second] == [f"bulk{n:02d}@example.com" for n in range(4, -1, -1)]


@pytest.mark.parametrize("page", ["0", "abc", "-1", "9" * 30, "100001"])
def test_a_malformed_page_number_is_400(admin: Visitor, page: str) -> None:
    assert admin.client.get(f"/admin/contacts?page={page}").status_code == 400


@pytest.mark.parametrize("contact_id", ["99", "2147483648", "9" * 40])
def test_an_unknown_or_huge_contact_id_is_404(admin: Visitor, contact_id: str) -> None:
    assert admin.client.get(f"/admin/contacts/{contact_id}").status_code == 404


def test_a_contacts_page_shows_its_tags_balances_history_runs_and_mail(
    app: Flask, admin: Visitor
) -> None:
    rich = logged_in(app, "rich@example.com")
    rich.get("/catalog")
    assert rich.click("buy-course-b").status_code == 303  # a run, a debit and an email
    store(app).grant(2, "Lock Field Guide", "3d")
    page = admin.get("/admin/contacts/2")
    tags = {r[0]: r[2] for r in cells(page, "admin-tags")}
    assert tags["Owns Course B"] == "for good"
    assert tags["Lock Field Guide"] != "for good"
    assert "_Credits: <strong>210</strong>" in page
    assert cells(page, "admin-ledger")[0][2:4] == ["-50", "210"]
    assert cells(page, "admin-runs")[0][1:3] == ["buy-course-b", "done"]
    assert cells(page, "admin-messages")[0][1:3] == ["email", "purchase"]
    assert 'href="/_preview/catalog?as=2"' in page


def test_a_credit_adjustment_is_a_ledger_entry_by_the_admin_and_the_ledger_verifies(
    app: Flask, admin: Visitor
) -> None:
    admin.get("/admin/contacts/3")
    data = {"field": "_Credits", "amount": "25", "reason": "sorry for the outage"}
    assert admin.post("/admin/contacts/3/credits", data).status_code == 303
    admin.get("/admin/contacts/3")
    assert admin.post("/admin/contacts/3/credits", {**data, "amount": "-10"}).status_code == 303
    entries = store(app).history(POOR, None, 2).entries
    assert [(e.delta, e.actor_kind, e.actor_id) for e in entries] == [
        (-10, "admin", "admin@example.com"),
        (25, "admin", "admin@example.com"),
    ]
    assert entries[0].reason == "admin adjustment: sorry for the outage"
    assert store(app).balance("poor@example.com") == 20
    assert "The ledger verifies" in admin.get("/admin/ledger")


@pytest.mark.parametrize(
    ("amount", "reason", "field", "status"),
    [
        ("abc", "r", "_Credits", 400),
        ("0", "r", "_Credits", 400),
        ("-0", "r", "_Credits", 400),
        ("1" * 40, "r", "_Credits", 400),
        ("10", "", "_Credits", 400),
        ("10", "r" * 401, "_Credits", 400),
        ("10", "r", "_Nope", 400),
        ("-6", "more than poor has", "_Credits", 409),
    ],
)
def test_a_malformed_credit_adjustment_changes_nothing(
    app: Flask, admin: Visitor, amount: str, reason: str, field: str, status: int
) -> None:
    before = counts(app)
    admin.get("/admin/contacts/3")
    data = {"field": field, "amount": amount, "reason": reason}
    assert admin.post("/admin/contacts/3/credits", data).status_code == status
    assert counts(app) == before


def test_tags_applied_with_an_expiry_and_removed_are_in_the_audit_trail(
    app: Flask, admin: Visitor
) -> None:
    admin.get("/admin/contacts/3")
    applied = {"op": "apply", "tag": "owns course c", "for": "14d"}
    assert admin.post("/admin/contacts/3/tags", applied).status_code == 303
    assert store(app).get_contact(POOR).has_tag("Owns Course C")
    admin.get("/admin/contacts/3")
    assert (
        admin.post("/admin/contacts/3/tags", {"op": "remove", "tag": "Owns Course C"}).status_code
        == 303
    )
    assert not store(app).get_contact(POOR).has_tag("Owns Course C")
    assert audit_rows(app) == [
        ("admin", "admin@example.com", "tag.apply", POOR,
         {"tag": "Owns Course C", "for": "14d", "changed": True}),
        ("admin", "admin@example.com", "tag.remove", POOR,
         {"tag": "Owns Course C", "for": None, "changed": True}),
    ]  # fmt: skip
    assert cells(admin.get("/admin/audit"), "admin-audit")[0][2] == "tag.remove"


@pytest.mark.parametrize(
    "data",
    [
        {"op": "apply", "tag": "No Such Tag"},
        {"op": "apply", "tag": "Owns Course C", "for": "soon"},
        {"op": "apply", "tag": "Owns Course C", "for": "-3d"},
        {"op": "grant", "tag": "Owns Course C"},
        {"tag": "Owns Course C"},
    ],
)
def test_a_malformed_tag_change_is_400_and_changes_nothing(
    app: Flask, admin: Visitor, data: dict[str, str]
) -> None:
    before = counts(app)
    admin.get("/admin/contacts/3")
    assert admin.post("/admin/contacts/3/tags", data).status_code == 400
    assert counts(app) == before
    assert audit_rows(app) == []


def test_an_admin_logs_a_contact_out_everywhere(app: Flask, admin: Visitor) -> None:
    poor = logged_in(app, "poor@example.com")
    admin.get("/admin/contacts/3")
    assert admin.post("/admin/contacts/3/sessions").status_code == 303
    assert poor.client.get("/account").status_code == 302
    assert admin.client.get("/admin").status_code == 200
    assert audit_rows(app) == [
        ("admin", "admin@example.com", "sessions.end_all", POOR, {"sessions": 1})
    ]


def test_an_admin_lifts_a_login_lock(app: Flask, admin: Visitor) -> None:
    guesser = Visitor(app.test_client())
    for _ in range(5):
        guesser.login("poor@example.com", "guess")
    assert guesser.login("poor@example.com").status_code == 429
    page = admin.get("/admin/locks")
    assert cells(page, "admin-locks")[0] == [
        "poor@example.com",
        "127.0.0.1",
        "5",
        "Lift for this email Lift for this address",
    ]
    assert admin.post("/admin/locks", {"email": "poor@example.com"}).status_code == 303
    assert guesser.login("poor@example.com").status_code == 303
    assert audit_rows(app)[-1][2:] == (
        "login.unlock",
        None,
        {"email": "poor@example.com", "attempts": 5},
    )


@pytest.mark.parametrize("data", [{}, {"email": "a@example.com", "address": "127.0.0.1"}])
def test_lifting_a_lock_names_exactly_one_of_email_or_address(
    admin: Visitor, data: dict[str, str]
) -> None:
    admin.get("/admin/locks")
    assert admin.post("/admin/locks", data).status_code == 400


def test_the_logs_show_inbound_webhooks_and_emails(app: Flask, admin: Visitor) -> None:
    secret = app.extensions["shortcodes"].site.webhook_secret
    body = json.dumps({"event_id": "evt-log-1", "contact": "poor@example.com",
                       "tag": "Owns Course A"}).encode()  # fmt: skip
    hooked = app.test_client().post(
        "/hooks/tags/apply", data=body, headers=signed_headers(secret, body)
    )
    assert hooked.status_code == 200
    admin.get("/reset")
    admin.post("/reset", {"email": "poor@example.com"})
    page = admin.get("/admin/logs")
    assert cells(page, "admin-inbound")[0][1:3] == ["webhook:tags/apply", "hook:evt-log-1"]
    assert cells(page, "admin-emails")[0][1:4] == ["poor@example.com", "account-reset", "pending"]


def nav_links(html: str) -> list[str]:
    """The console navigation's links on a page."""
    return [str(a["href"]) for a in BeautifulSoup(html, "html.parser").select(".admin-nav a")]


def test_the_navigation_folds_in_payments(admin: Visitor) -> None:
    links = nav_links(admin.get("/admin"))
    assert links == ["/admin", "/admin/contacts", "/admin/logs", "/admin/ledger", "/admin/locks",
                     "/admin/audit", "/admin/payments", "/admin/pages"]  # fmt: skip
    assert nav_links(admin.get("/admin/payments")) == links


def test_the_navigation_has_a_place_for_the_page_editor(template_db: Path, tmp_path: Path) -> None:
    app = make_app(template_db, tmp_path / "instance")
    editor = Blueprint("editor_stand_in", __name__)
    editor.add_url_rule("/admin/pages", "pages", lambda: "editor")
    app.register_blueprint(editor)
    try:
        links = nav_links(logged_in(app, "admin@example.com").get("/admin"))
        assert links[-2:] == ["/admin/payments", "/admin/pages"]
    finally:
        store(app).close()


def test_a_contacts_page_shows_its_drips_with_a_pause(app: Flask, admin: Visitor) -> None:
    d, r = schema.drip_states, schema.drip_releases
    started = datetime(2026, 1, 1, 12, 0)
    with store(app).engine.begin() as conn:  # a member paused after 1d12h of two releases
        conn.execute(
            d.insert().values(
                rule="course-drip", contact_id=POOR, started_at=started, since=started,
                active=False, active_us=36 * 3600 * 10**6, next_at=None, status="paused",
            )
        )  # fmt: skip
        for n, item in enumerate(("day-1", "day-2")):
            conn.execute(
                r.insert().values(
                    rule="course-drip", contact_id=POOR, item=item, active_us=0,
                    released_at=started + timedelta(days=n),
                )
            )  # fmt: skip
    page = admin.get(f"/admin/contacts/{POOR}")
    assert cells(page, "admin-drips") == [
        ["course-drip", "2026-01-01 12:00", "paused", "1d12h", "day-1, day-2", "waiting for access"]
    ]

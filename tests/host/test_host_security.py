"""Host security: no route shows or changes another contact's data; contact data never runs as script."""

from __future__ import annotations

import json

import pytest
from bs4 import BeautifulSoup
from flask import Flask

from shortcodes.membership.signing import signed_headers
from tests.support.db import row_counts
from tests.support.host import counts, logged_in, store
from tests.support.visitors import Visitor

#: Every route of the host, and the test in this file that tries it for isolation.
ROUTES = {
    "/": "test_every_page_shows_only_the_logged_in_contacts_data",
    "/<path:url>": "test_every_page_shows_only_the_logged_in_contacts_data",
    "/login": "test_login_needs_the_other_contacts_password",
    "/logout": "test_logout_touches_only_the_own_session",
    "/actions/<action_id>": "test_actions_run_only_for_the_session_contact",
    "/checkout/<product_id>": "test_checkout_credits_only_the_session_contact",
    "/hooks/<path:name>": "test_webhooks_need_the_site_secret",
    "/hooks/stripe": "test_the_stripe_hook_refuses_what_stripe_did_not_sign",
    "/pay/<product_id>": "test_stripe_checkout_routes_act_only_for_the_session_contact",
    "/pay/portal": "test_stripe_checkout_routes_act_only_for_the_session_contact",
    "/pay/success": "test_stripe_checkout_routes_act_only_for_the_session_contact",
    "/admin/payments": "test_author_tools_are_for_admins_only",
    "/admin/pages": "test_author_tools_are_for_admins_only",
    "/admin/pages/new": "test_author_tools_are_for_admins_only",
    "/admin/pages/edit/<path:name>": "test_author_tools_are_for_admins_only",
    "/admin/pages/preview": "test_author_tools_are_for_admins_only",
    "/admin/pages/save": "test_author_tools_are_for_admins_only",
    "/admin": "test_author_tools_are_for_admins_only",
    "/admin/audit": "test_author_tools_are_for_admins_only",
    "/admin/contacts": "test_author_tools_are_for_admins_only",
    "/admin/contacts/<int:contact_id>": "test_author_tools_are_for_admins_only",
    "/admin/contacts/<int:contact_id>/credits": "test_admin_changes_are_for_admins_only",
    "/admin/contacts/<int:contact_id>/sessions": "test_admin_changes_are_for_admins_only",
    "/admin/contacts/<int:contact_id>/tags": "test_admin_changes_are_for_admins_only",
    "/admin/ledger": "test_author_tools_are_for_admins_only",
    "/admin/locks": "test_admin_changes_are_for_admins_only",
    "/admin/logs": "test_author_tools_are_for_admins_only",
    "/signup": "test_account_links_act_only_on_the_account_they_were_sent_for",
    "/verify": "test_account_links_act_only_on_the_account_they_were_sent_for",
    "/reset": "test_account_links_act_only_on_the_account_they_were_sent_for",
    "/reset/new": "test_account_links_act_only_on_the_account_they_were_sent_for",
    "/account/email": "test_account_links_act_only_on_the_account_they_were_sent_for",
    "/account/settings": "test_settings_change_only_the_session_contact",
    "/account/sessions/end": "test_settings_change_only_the_session_contact",
    "/_preview": "test_author_tools_are_for_admins_only",
    "/_preview/<path:url>": "test_author_tools_are_for_admins_only",
    "/_shortcodes": "test_author_tools_are_for_admins_only",
    "/theme/<path:filename>": "test_theme_files_hold_no_contact_data",
}

XSS_NAME = '<script>alert("name")</script>'
XSS_FIELDS = {
    "FirstName": '"><img src=x onerror=alert(1)>',
    "City": "javascript:alert(document.cookie)",
    "Bio": "<svg onload=alert(1)>[memb_contact fields=Email]{{contact.email}}",
}


def test_every_route_is_covered_by_an_isolation_test(app: Flask) -> None:
    rules = {rule.rule for rule in app.url_map.iter_rules()}
    assert rules == set(ROUTES), "a new route needs an isolation test here"
    for test in set(ROUTES.values()):
        assert test in globals()


def test_every_page_shows_only_the_logged_in_contacts_data(app: Flask) -> None:
    store(app).credit("rich@example.com", 7, reason="Rita's private bonus")
    poor = logged_in(app, "poor@example.com")
    for url in app.extensions["shortcodes"].pages.all_urls():
        response = poor.client.get(url)
        text = response.get_data(as_text=True)
        for secret in ("rich@example.com", "Rita", "267", "private bonus", "owner@example.com"):
            assert secret not in text, (url, secret)


def test_login_needs_the_other_contacts_password(app: Flask) -> None:
    poor = logged_in(app, "poor@example.com")
    poor.get("/")
    data = {"email": "rich@example.com", "password": "poor-pass"}
    assert poor.post("/login", data).status_code == 401
    assert "Rita" not in poor.get("/account")


def test_logout_touches_only_the_own_session(app: Flask) -> None:
    rich = logged_in(app, "rich@example.com")
    poor = logged_in(app, "poor@example.com")
    poor.get("/")
    poor.post("/logout")
    assert "Rita" in rich.get("/account")


def test_actions_run_only_for_the_session_contact(app: Flask) -> None:
    rich = logged_in(app, "rich@example.com")
    rich.get("/catalog")
    poor = logged_in(app, "poor@example.com")
    poor.get("/catalog")
    before = counts(app)
    for action in ("buy-course-a", "buy-course-b", "buy-masterclass"):
        stolen = {**rich.button(action), "csrf_token": poor.csrf()}
        assert poor.client.post(f"/actions/{action}", data=stolen).status_code == 403
    assert counts(app) == before


def test_checkout_credits_only_the_session_contact(app: Flask) -> None:
    poor = logged_in(app, "poor@example.com")
    poor.get("/credits")
    data = {"csrf_token": poor.csrf(), "contact": "rich@example.com", "contact_id": "2"}
    poor.client.post("/checkout/credits-50", data=data)
    assert store(app).balance("poor@example.com") == 55
    assert store(app).balance("rich@example.com") == 260


def test_webhooks_need_the_site_secret(app: Flask) -> None:
    client = app.test_client()
    body = json.dumps({"event_id": "steal", "contact": "rich@example.com", "field": "_Credits",
                       "operation": "set", "value": 0}).encode()  # fmt: skip
    for secret in ("", "guess", "demo-webhook-secret"):
        headers = signed_headers(secret or "x", body) if secret else {}
        assert client.post("/hooks/credits", data=body, headers=headers).status_code == 401
    assert store(app).balance("rich@example.com") == 260


ADMIN_PAGES = (
    "/_preview",
    "/_preview/account?as=poor@example.com",
    "/_shortcodes",
    "/admin",
    "/admin/payments",
    "/admin/audit",
    "/admin/contacts",
    "/admin/contacts?q=poor",
    "/admin/contacts/3",
    "/admin/ledger",
    "/admin/locks",
    "/admin/logs",
    "/admin/pages",
    "/admin/pages/edit/account.md",
)


def test_author_tools_are_for_admins_only(app: Flask) -> None:
    rich = logged_in(app, "rich@example.com")
    for url in ADMIN_PAGES:
        assert rich.client.get(url).status_code == 403, url
        assert "poor@example.com" not in rich.client.get(url).get_data(as_text=True)
    assert rich.client.get("/admin/pages/new?file=x.md").status_code == 403
    anonymous = app.test_client()
    for url in ADMIN_PAGES:
        assert anonymous.get(url).status_code == 302, url
    admin = logged_in(app, "admin@example.com")
    for url in ADMIN_PAGES:
        assert admin.client.get(url).status_code == 200, url
    # The editor's POSTs: another contact's page text never comes back, nothing is written.
    poor = logged_in(app, "poor@example.com")
    poor.get("/")
    token = poor.csrf()
    preview = {"file": "a.md", "text": "[memb_contact fields=FirstName]", "as": "rich@example.com"}
    answer = poor.client.post("/admin/pages/preview", json=preview, headers={"X-CSRFToken": token})
    assert answer.status_code == 403
    assert "Rita" not in answer.get_data(as_text=True)
    save = {"file": "account.md", "text": "x", "action": "publish", "csrf_token": token}
    assert poor.client.post("/admin/pages/save", data=save).status_code == 403


def test_admin_changes_are_for_admins_only(app: Flask) -> None:
    from shortcodes.store import schema

    rich = logged_in(app, "rich@example.com")
    rich.get("/account")
    before = {**counts(app), **row_counts(store(app), schema.audit_log, schema.sessions)}
    posts = {
        "/admin/contacts/3/credits": {"amount": "500", "field": "_Credits", "reason": "gift"},
        "/admin/contacts/3/tags": {"op": "apply", "tag": "Site Admin"},
        "/admin/contacts/1/sessions": {},
        "/admin/locks": {"email": "rich@example.com"},
    }
    for url, data in posts.items():
        assert rich.post(url, data).status_code == 403, url
        assert app.test_client().post(url, data=data).status_code in (302, 400), url
    after = {**counts(app), **row_counts(store(app), schema.audit_log, schema.sessions)}
    assert after == before


def test_account_links_act_only_on_the_account_they_were_sent_for(app: Flask) -> None:
    from tests.support.mailbox import link_in, mails_to

    poor = logged_in(app, "poor@example.com")
    poor.get("/reset")
    poor.post("/reset", {"email": "poor@example.com"})
    token = link_in(mails_to(app, "poor@example.com")[0]).split("token=")[1]
    # The reset link names poor's account; no form field can point it at rich.
    data = {"token": token, "password": "taken-over", "email": "rich@example.com",
            "contact": "rich@example.com", "c": "2"}  # fmt: skip
    poor.get("/reset/new?token=" + token)
    assert poor.post("/reset/new", data).status_code == 303
    assert Visitor(app.test_client()).login("rich@example.com").status_code == 303
    assert Visitor(app.test_client()).login("poor@example.com", "taken-over").status_code == 303
    # Sign-up and email links signed for another purpose or altered are refused.
    for path in ("/verify", "/account/email"):
        assert poor.client.get(f"{path}?token={token}").status_code == 400
    assert poor.client.get("/signup").status_code == 200


def test_settings_change_only_the_session_contact(app: Flask) -> None:
    rich = logged_in(app, "rich@example.com")
    poor = logged_in(app, "poor@example.com")
    poor.get("/account/settings")
    data = {"form": "name", "name": "Poor P.", "contact_id": "2", "email": "rich@example.com"}
    assert poor.post("/account/settings", data).status_code == 303
    assert store(app).get_contact(2).field("Name") != "Poor P."
    poor.get("/account/settings")
    assert poor.post("/account/sessions/end", {"contact_id": "2"}).status_code == 303
    assert rich.client.get("/account").status_code == 200
    assert poor.client.get("/account").status_code == 302


def test_theme_files_hold_no_contact_data(app: Flask) -> None:
    rich = logged_in(app, "rich@example.com")
    response = rich.client.get("/theme/style.css")
    assert "Rita" not in response.get_data(as_text=True)
    response.close()
    assert rich.client.get("/theme/../site/seed.toml").status_code == 404


@pytest.fixture
def evil(app: Flask) -> Visitor:
    """A logged-in contact whose name and fields are XSS payloads."""
    contact_id = store(app).add_contact("evil@example.com", XSS_NAME, "evil-pass", XSS_FIELDS)
    store(app).credit(contact_id, 100, reason='<img src=x onerror=alert("reason")>')
    who = Visitor(app.test_client())
    assert who.login("evil@example.com", "evil-pass").status_code == 303
    return who


def assert_inert(html: str, where: str) -> None:
    """No script element, no event handler attribute, no javascript: link in ``html``."""
    soup = BeautifulSoup(html, "html.parser")
    assert soup.find("script") is None, where
    assert soup.find("svg") is None, where
    for tag in soup.find_all(True):
        for name, value in tag.attrs.items():
            assert not name.lower().startswith("on"), (where, tag)
            text = " ".join(value) if isinstance(value, list) else str(value)
            assert not text.strip().lower().startswith("javascript:"), (where, tag)


def test_xss_in_contact_fields_never_executes_on_any_page(app: Flask, evil: Visitor) -> None:
    urls = app.extensions["shortcodes"].pages.all_urls()
    for url in urls:
        response = evil.client.get(url)
        assert_inert(response.get_data(as_text=True), url)
    html = evil.get("/account")
    assert "&lt;script&gt;" in html  # the name is shown, escaped
    assert "reason" in html  # the ledger reason is shown too, escaped


def test_xss_in_contact_fields_is_escaped_in_the_admin_preview(app: Flask, evil: Visitor) -> None:
    admin = logged_in(app, "admin@example.com")
    for url in ("/", "/account", "/catalog", "/library"):
        assert_inert(admin.get(f"/_preview{url}?as=evil@example.com"), url)


def test_xss_typed_into_the_login_form_comes_back_escaped(visitor: Visitor) -> None:
    response = visitor.login('"><script>alert(1)</script>', "x")
    assert response.status_code == 401
    assert_inert(response.get_data(as_text=True), "/login")


def test_the_stripe_hook_refuses_what_stripe_did_not_sign(app: Flask) -> None:
    """The demo has no Stripe signing secret: every delivery is refused, even one signed with
    the site's generic webhook secret (tests/payments covers a configured site)."""
    body = json.dumps({"id": "evt_1", "type": "invoice.paid", "created": 1, "data": {}}).encode()
    secret = app.extensions["shortcodes"].site.webhook_secret
    before = counts(app)
    for headers in ({}, signed_headers(secret, body), {"Stripe-Signature": "t=1,v1=00"}):
        response = app.test_client().post("/hooks/stripe", data=body, headers=headers)
        assert (response.status_code, response.get_json()["error"]) == (503, "not_configured")
    assert counts(app) == before


def test_stripe_checkout_routes_act_only_for_the_session_contact(app: Flask) -> None:
    """The routes take no contact from the request: the demo sells nothing through Stripe (404),
    the portal opens only the session contact's own customer (Ann has none), and the success
    page grants nothing (tests/payments covers a site that sells through Stripe)."""
    poor = logged_in(app, "poor@example.com")
    poor.get("/credits")
    before = counts(app)
    assert poor.post("/pay/credits-50", {"contact": "rich@example.com"}).status_code == 404
    assert poor.post("/pay/portal", {"customer": "cus_rich"}).location == "/credits"
    assert "Rita" not in poor.get("/pay/success?product=credits-50&contact=rich@example.com")
    assert counts(app) == before

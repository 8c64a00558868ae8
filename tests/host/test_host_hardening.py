"""Hardening: security headers and ``Cache-Control`` on every route, and 4xx (never 500) for the
malformed inputs a black-box run found: a 4,301-digit webhook timestamp, deep JSON, ids beyond
2**31, NUL characters, CR/LF in ``next`` / ``redirect_url``. SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from shortcodes.membership.signing import signed_headers
from shortcodes.store import schema
from tests.support.backends import empty_database_url, worker_schema
from tests.support.host import app_config, counts, logged_in, verified_app
from tests.support.visitors import Visitor

#: A URL for each route of the host, with the visitor that gets a real answer from it.
SAMPLES = {
    "/": ("/", None),
    "/<path:url>": ("/catalog", "rich@example.com"),
    "/login": ("/login", None),
    "/logout": ("/logout", None),
    "/signup": ("/signup", None),
    "/verify": ("/verify?token=x", None),
    "/reset": ("/reset", None),
    "/reset/new": ("/reset/new?token=x", None),
    "/account/settings": ("/account/settings", "rich@example.com"),
    "/account/sessions/end": ("/account/sessions/end", "rich@example.com"),
    "/account/email": ("/account/email?token=x", None),
    "/actions/<action_id>": ("/actions/buy-course-a", "rich@example.com"),
    "/checkout/<product_id>": ("/checkout/credits-50", "rich@example.com"),
    "/pay/<product_id>": ("/pay/credits-50", "rich@example.com"),
    "/pay/portal": ("/pay/portal", "rich@example.com"),
    "/pay/success": ("/pay/success", "rich@example.com"),
    "/hooks/<path:name>": ("/hooks/credits", None),
    "/hooks/stripe": ("/hooks/stripe", None),
    "/_preview": ("/_preview", "admin@example.com"),
    "/_preview/<path:url>": ("/_preview/catalog", "admin@example.com"),
    "/_shortcodes": ("/_shortcodes", "admin@example.com"),
    "/admin": ("/admin", "admin@example.com"),
    "/admin/payments": ("/admin/payments", "admin@example.com"),
    "/admin/pages": ("/admin/pages", "admin@example.com"),
    "/admin/pages/new": ("/admin/pages/new?file=x.md", "admin@example.com"),
    "/admin/pages/edit/<path:name>": ("/admin/pages/edit/catalog.md", "admin@example.com"),
    "/admin/pages/preview": ("/admin/pages/preview", "admin@example.com"),
    "/admin/pages/save": ("/admin/pages/save", "admin@example.com"),
    "/admin/audit": ("/admin/audit", "admin@example.com"),
    "/admin/contacts": ("/admin/contacts", "admin@example.com"),
    "/admin/contacts/<int:contact_id>": ("/admin/contacts/2", "admin@example.com"),
    "/admin/contacts/<int:contact_id>/credits": ("/admin/contacts/2/credits", "admin@example.com"),
    "/admin/contacts/<int:contact_id>/sessions": (
        "/admin/contacts/2/sessions",
        "admin@example.com",
    ),
    "/admin/contacts/<int:contact_id>/tags": ("/admin/contacts/2/tags", "admin@example.com"),
    "/admin/ledger": ("/admin/ledger", "admin@example.com"),
    "/admin/locks": ("/admin/locks", "admin@example.com"),
    "/admin/logs": ("/admin/logs", "admin@example.com"),
    "/theme/<path:filename>": ("/theme/style.css", None),
}


def assert_secure(response: object, url: str, *, private: bool = True) -> None:
    """The security headers, and ``private, no-store`` unless ``private`` is False."""
    headers = response.headers  # type: ignore[attr-defined]
    csp = headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp, url
    assert "script-src 'self'" in csp, url
    assert "unsafe-inline" not in csp, url
    assert headers["X-Content-Type-Options"] == "nosniff", url
    assert headers["Referrer-Policy"] == "strict-origin-when-cross-origin", url
    if private:
        assert headers["Cache-Control"] == "private, no-store", url


def test_every_route_answers_with_the_security_headers(app: Flask) -> None:
    rules = {rule.rule for rule in app.url_map.iter_rules()}
    assert rules == set(SAMPLES), "a new route needs a sample here"
    visitors = {None: Visitor(app.test_client())}
    for rule, (url, who) in SAMPLES.items():
        if who not in visitors:
            visitors[who] = logged_in(app, who)
        client = visitors[who].client
        for response in (client.get(url), client.post(url, data={})):
            # 503 only from the Stripe hook of a site without Stripe: "not configured".
            assert response.status_code < 500 or url == "/hooks/stripe", (url, response.status_code)
            assert_secure(response, url, private=not rule.startswith("/theme/"))
            response.close()


def test_pages_and_errors_depend_on_the_visitor_so_nobody_caches_them(app: Flask) -> None:
    client = app.test_client()
    for url in ("/", "/login", "/nowhere", "/courses/b", "/_preview"):
        assert client.get(url).headers["Cache-Control"] == "private, no-store", url
    theme = client.get("/theme/style.css")
    assert theme.headers["Cache-Control"] == "public, max-age=3600"
    theme.close()


def test_no_page_needs_inline_script_or_style(app: Flask) -> None:
    admin = logged_in(app, "admin@example.com")
    urls = [*app.extensions["shortcodes"].pages.all_urls(), "/account/settings", "/admin",
            "/admin/contacts/2", "/admin/logs", "/admin/locks", "/_preview/catalog"]  # fmt: skip
    pages = [admin.get(url) for url in urls]
    pages += [Visitor(app.test_client()).get(url) for url in ("/login", "/signup", "/reset")]
    for url, html in zip([*urls, "/login", "/signup", "/reset"], pages, strict=True):
        assert "<script" not in html, url
        assert " style=" not in html, url


# -- malformed input, on both databases ----------------------------------------------------------


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[tuple[object, str]]:
    """This worker's own PostgreSQL schema for the hardening tests."""
    yield from worker_schema("hardening")


@pytest.fixture
def any_app(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Flask]:
    """The seeded demo site on ``backend``; the ledger must verify afterwards."""
    url = empty_database_url(backend, request, tmp_path, schema.metadata.sorted_tables)
    config = app_config(tmp_path / "instance", DATABASE_URL=url, STRIPE_WEBHOOK_SECRET="whsec_t")
    yield from verified_app(config)


def hook(app: Flask, name: str, body: bytes, headers: dict[str, str] | None = None) -> object:
    """POST a webhook signed with the site's secret (or with ``headers``)."""
    secret = app.extensions["shortcodes"].site.webhook_secret
    return app.test_client().post(
        f"/hooks/{name}", data=body, headers=headers or signed_headers(secret, body)
    )


def test_a_4301_digit_webhook_timestamp_is_401(any_app: Flask) -> None:
    body = b'{"event_id": "x"}'
    stamp = "9" * 4301
    headers = {"X-Shortcodes-Timestamp": stamp, "X-Shortcodes-Signature": "sha256=00"}
    response = hook(any_app, "credits", body, headers)
    assert response.status_code == 401  # type: ignore[attr-defined]
    assert response.get_json()["error"] == "bad_timestamp"  # type: ignore[attr-defined]
    stripe = any_app.test_client().post(
        "/hooks/stripe", data=body, headers={"Stripe-Signature": f"t={stamp},v1=00"}
    )
    assert 400 <= stripe.status_code < 500


def test_deeply_nested_json_is_400(any_app: Flask) -> None:
    deep = b"[" * 20_000 + b"]" * 20_000  # past Python's recursion limit, under the size cap
    response = hook(any_app, "credits", deep)
    assert response.status_code == 400  # type: ignore[attr-defined]
    assert response.get_json()["error"] == "bad_json"  # type: ignore[attr-defined]
    stripe = any_app.test_client().post(
        "/hooks/stripe", data=deep, headers={"Stripe-Signature": "t=1,v1=00"}
    )
    assert stripe.status_code == 400


@pytest.mark.parametrize("ref", [2**31, 2**40, str(2**63), "9" * 30])
def test_contact_ids_beyond_32_bits_are_answered_4xx(any_app: Flask, ref: object) -> None:
    before = counts(any_app)
    payload = {"event_id": f"big-{ref}", "contact": ref, "tag": "Owns Course A"}
    response = hook(any_app, "tags/apply", json.dumps(payload).encode())
    assert response.status_code == 404  # type: ignore[attr-defined]
    admin = logged_in(any_app, "admin@example.com")
    assert admin.client.get(f"/admin/contacts/{ref}").status_code == 404
    assert admin.client.get(f"/_preview/catalog?as={ref}").status_code == 404
    assert counts(any_app) == before


def test_nul_characters_are_400_and_change_nothing(any_app: Flask) -> None:
    before = counts(any_app)
    who = Visitor(any_app.test_client())
    who.get("/login")
    assert who.post("/login", {"email": "rich@example.com\x00", "password": "x"}).status_code == 400
    who.get("/signup")
    form = {"name": "N\x00", "email": "n@example.com", "password": "long-enough"}
    assert who.post("/signup", form).status_code == 400
    assert any_app.test_client().get("/login?next=/a%00b").status_code == 400
    payload = {"event_id": "nul-1", "contact": "rich@example.com", "field": "City",
               "value": "Paris\x00"}  # fmt: skip
    response = hook(any_app, "contacts/update", json.dumps(payload).encode())
    assert 400 <= response.status_code < 500  # type: ignore[attr-defined]
    named = {"event_id": "nul\x00id", "contact": "rich@example.com", "tag": "Owns Course A"}
    response = hook(any_app, "tags/apply", json.dumps(named).encode())
    assert 400 <= response.status_code < 500  # type: ignore[attr-defined]
    assert counts(any_app) == before


@pytest.mark.parametrize("target", ["/catalog\r\nSet-Cookie: x=1", "/catalog%0d%0aX: 1", "/a\nb"])
def test_cr_lf_in_next_or_redirect_url_never_reaches_a_header(any_app: Flask, target: str) -> None:
    who = Visitor(any_app.test_client())
    response = who.login("rich@example.com", next_url=target)
    assert response.status_code == 303
    assert "\n" not in response.location
    assert "\r" not in response.location
    if "\n" in target:
        assert response.location == "/"
    who.get("/catalog")
    clicked = who.click("buy-course-a", redirect_url=target)
    assert clicked.status_code == 303
    assert "\n" not in clicked.location
    assert "\r" not in clicked.location

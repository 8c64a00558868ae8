"""Host page views: serve site pages through the theme, enforcing each page's access tags.

An anonymous visitor asking for a restricted page is sent to the login page; a logged-in contact
without one of the page's access tags gets 403 with the page's ``offer`` (its credit button: unlock
it, or buy more credits) when it has one, else a plain "not available". Internal tag names are
never shown. Admins (the site's admin tag) see every page.
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, send_from_directory
from flask.typing import ResponseReturnValue

from shortcodes.context import Contact
from shortcodes.errors import ThemeError
from shortcodes.host.auth import login_redirect
from shortcodes.host.pages import FrontMatter, Page
from shortcodes.host.render import (
    error_body,
    host_template,
    in_layout,
    make_context,
    page_extra,
    render_body,
    simple_page,
)
from shortcodes.host.state import current_contact, host, is_admin

bp = Blueprint("pages", __name__)


def may_view(meta: FrontMatter, contact: Contact | None) -> bool:
    """True when ``contact`` may see a page with this front matter."""
    if not meta.needs_login:
        return True
    if contact is None:
        return False
    if not meta.access or is_admin(contact):
        return True
    return any(contact.has_tag(tag) for tag in meta.access)


def refresh_theme() -> None:
    """Register new or changed template shortcodes of the theme, without a restart. A broken
    template keeps the last good registration; its error is logged with file and line."""
    state = host()
    try:
        state.theme.refresh(state.env)
    except ThemeError as exc:
        current_app.logger.error("theme reload: %s", exc)


def load_page(url: str) -> Page:
    """The compiled page for ``url`` or a 404."""
    state = host()
    refresh_theme()
    path = state.pages.find(url)
    if path is None:
        abort(404)
    return state.pages.get(path, url)


def render_page(page: Page, contact: Contact | None) -> str:
    """A page rendered for ``contact``: shortcodes first, then the theme layout."""
    ctx = make_context(contact, extra=page_extra(page, contact))
    return in_layout(page.meta.layout, page.meta.title, render_body(page, ctx), contact, page=page)


@bp.get("/", defaults={"url": ""})
@bp.get("/<path:url>")
def show(url: str) -> ResponseReturnValue:
    """Serve the page at ``url`` to the current visitor."""
    page = load_page("/" + url)
    contact = current_contact()
    if not may_view(page.meta, contact):
        if contact is None:
            return login_redirect()
        return locked_page(page, contact), 403
    return render_page(page, contact), 200, {"Cache-Control": "private, no-store"}


def locked_page(page: Page, contact: Contact) -> str:
    """What a contact who cannot open ``page`` sees: its title, description and offer."""
    if page.offer is None:
        text = "This page is not part of your membership."
        return simple_page("Not available", error_body(text), contact)
    offer = page.offer.render(make_context(contact))
    body = host_template("locked", description=page.meta.description, offer=offer)
    return simple_page(page.meta.title or "Not available", body, contact)


@bp.get("/theme/<path:filename>")
def theme_file(filename: str) -> ResponseReturnValue:
    """Static files of the theme (CSS, images) from its ``static`` folder."""
    return send_from_directory(host().theme.static_folder, filename, max_age=3600)


def error_page(code: int, title: str, text: str) -> ResponseReturnValue:
    """An error page (``host/error.html`` in the theme layout); plain text if that fails."""
    try:
        return simple_page(title, error_body(text), current_contact()), code
    except Exception:
        return f"{title}: {text}", code, {"Content-Type": "text/plain; charset=utf-8"}

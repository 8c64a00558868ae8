"""Host author preview: admins view any page as any contact or anonymous, lint problems above.

``GET /_preview/<page path>?as=<contact id or email, or "anonymous">`` renders the page exactly as
that visitor would see it, but with inline error notices on, and with inert action buttons (their
tokens never verify, so an admin cannot act for someone else). ``GET /_preview`` lists the pages
and contacts; ``GET /_shortcodes`` shows the generated shortcode reference when it is available.
"""

from __future__ import annotations

import importlib.util

from flask import Blueprint, abort, request
from flask.typing import ResponseReturnValue
from markdown_it import MarkdownIt
from markupsafe import Markup

from shortcodes.context import Contact
from shortcodes.errors import InvalidInput, PageError, UnknownContact
from shortcodes.host.auth import admin_required
from shortcodes.host.pages import split_front_matter
from shortcodes.host.render import (
    InertSigner,
    error_body,
    host_template,
    in_layout,
    make_context,
    page_extra,
    render_body,
    simple_page,
)
from shortcodes.host.state import host, signed_in
from shortcodes.host.views import load_page, may_view
from shortcodes.reference import reference as shortcode_reference

bp = Blueprint("preview", __name__)


def viewer(ref: str) -> Contact | None:
    """The contact to preview as (None for anonymous); 404 for an unknown one."""
    if not ref or ref == "anonymous":
        return None
    try:
        return host().store.get_contact(ref)
    except (UnknownContact, InvalidInput):
        abort(404)


@bp.get("/_preview", defaults={"url": ""}, strict_slashes=False)
@bp.get("/_preview/<path:url>")
@admin_required
def preview(url: str) -> ResponseReturnValue:
    """Render ``/<url>`` as the contact named by ``?as=`` with the page's lint problems on top."""
    admin = signed_in()
    if not url and "as" not in request.args:
        return index(admin)
    try:
        page = load_page("/" + url)
    except PageError as exc:  # the author sees what is wrong and where (visitors get a 500)
        return simple_page("Preview", error_body(str(exc)), admin), 422
    who = viewer(request.args.get("as", "anonymous"))
    text = page.path.read_text(encoding="utf-8")
    _, body, offset = split_front_matter(text, page.path.name)
    banner = host_template(
        "preview_banner",
        url="/" + url,
        label=who.email if who is not None else "an anonymous visitor",
        allowed=may_view(page.meta, who),
        problems=host().env.lint(body, str(page.path.name)),
        line_offset=offset,
    )
    ctx = make_context(who, show_errors=True, signer=InertSigner(), extra=page_extra(page, who))
    html = in_layout(
        page.meta.layout, page.meta.title, render_body(page, ctx), admin, page=page, banner=banner
    )
    return html, 200, {"Cache-Control": "private, no-store"}


def index(admin: Contact) -> ResponseReturnValue:
    """Links to preview every page as anonymous or as a contact id."""
    body = host_template("preview_index", urls=host().pages.all_urls())
    return simple_page("Preview", body, admin)


@bp.get("/_shortcodes")
@admin_required
def reference() -> ResponseReturnValue:
    """The shortcode reference generated from the registry (admins only)."""
    admin = signed_in()
    if importlib.util.find_spec("shortcodes.reference") is None:
        body = error_body("The reference is not available in this version.")
        return simple_page("Shortcodes", body, admin), 404

    # html=False: the reference quotes shortcode examples and descriptions; none of it is
    # trusted to be raw HTML, so markdown-it escapes every tag it meets.
    html = (
        MarkdownIt("commonmark", {"html": False})
        .enable("table")
        .render(shortcode_reference(host().env))
    )
    body = Markup(html)  # noqa: S704 - markdown-it escaped every tag of the text above
    return in_layout("bare", "Shortcode reference", body, admin, page=None)

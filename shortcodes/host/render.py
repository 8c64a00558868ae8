"""Host rendering: build the Context for a request, render a page's shortcodes, then its layout.

The order is fixed: shortcodes render first against a read-only snapshot of the contact, then the
theme layout wraps the result. Flashed messages and the preview's lint problems are rendered by
the host above the body, escaped, so every theme shows them without having to know about them.
What the host draws itself comes from its Jinja2 templates (:func:`host_template`), which a theme
may override (see :mod:`.app`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from flask import get_flashed_messages, render_template, request
from flask_wtf.csrf import generate_csrf
from jinja2 import TemplateNotFound
from markupsafe import Markup

from shortcodes.context import Contact, Context, RequestInfo, Signer, SiteInfo
from shortcodes.errors import PageError
from shortcodes.host.account import account_data, tag_data
from shortcodes.host.pages import Page
from shortcodes.host.state import host, is_admin


class InertSigner:
    """A signer for author previews: buttons render, but their tokens never verify."""

    #: The token every preview button carries; the action endpoint answers it as inert.
    TOKEN = "preview-only"  # noqa: S105 - a public marker, not a secret

    def sign_action(self, contact_id: int, action_id: str, params: Mapping[str, str]) -> str:
        """A placeholder token that the action endpoint refuses, saying it came from a preview."""
        return self.TOKEN


def make_context(
    contact: Contact | None,
    *,
    show_errors: bool = False,
    signer: Signer | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Context:
    """The render context for the current request and ``contact``."""
    state = host()
    return Context(
        contact=contact,
        request=RequestInfo(path=request.path),
        site=SiteInfo(url=state.site.url or request.host_url.rstrip("/"), name=state.site.name),
        signer=signer or state.signer,
        csrf_token=generate_csrf(),
        show_errors=show_errors,
        extra=extra or {},
    )


def page_extra(page: Page, contact: Contact | None) -> dict[str, Any]:
    """The extra data a page asked for in its front matter (``data: account``, ``tags``)."""
    extra: dict[str, Any] = {}
    if contact is not None and "account" in page.meta.data:
        extra.update(account_data(host().store, contact))
    if contact is not None and "tags" in page.meta.data:
        extra.update(tag_data(host().store, contact))
    return extra


def render_body(page: Page, ctx: Context) -> Markup:
    """Render the page's shortcodes for ``ctx``."""
    return page.template.render(ctx)


def host_template(name: str, **values: Any) -> Markup:
    """The host's template ``host/<name>.html`` (the theme's override if it ships one), rendered
    with autoescape: every value is escaped unless it is already :class:`Markup`."""
    html = render_template(f"host/{name}.html", **values)
    return Markup(html)  # noqa: S704 - autoescaped template output


def flashes_html() -> Markup:
    """The flashed messages of this request (empty when there are none)."""
    messages: Sequence[Any] = get_flashed_messages(with_categories=True)
    return host_template("flashes", messages=messages) if messages else Markup("")


def in_layout(layout: str, title: str, body: Markup, contact: Contact | None, **values: Any) -> str:
    """Wrap ``body`` (with flashed messages above it) in the theme's layout."""
    state = host()
    content = Markup("{}{}{}").format(values.pop("banner", Markup("")), flashes_html(), body)
    try:
        return _render_layout(layout, content, title, contact, **values)
    except TemplateNotFound as exc:
        raise PageError(f"theme {state.theme.name!r}: no template {exc.name!r}") from exc


def _render_layout(
    layout: str, content: Markup, title: str, contact: Contact | None, **values: Any
) -> str:
    state = host()
    return state.theme.render(
        f"{layout}.html",
        content=content,
        title=title,
        contact=contact,
        site=state.site,
        csrf_token=generate_csrf(),
        is_admin=is_admin(contact),
        messages=(),
        **values,
    )


def simple_page(title: str, body: Markup, contact: Contact | None) -> str:
    """A host-made page (login form, error) in the theme's ``page`` layout, which heads it."""
    return in_layout("page", title, body, contact, page=None)


def error_body(text: str) -> Markup:
    """The body of an error page saying ``text`` (``host/error.html``)."""
    return host_template("error", text=text)

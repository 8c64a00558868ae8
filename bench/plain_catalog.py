"""The baseline for bench/server.py: the catalog as a plain Flask + Jinja2 view, branches in Python.

``create()`` builds the normal host app (same store, session, CSRF, signer, theme layout) and adds
``GET /plain/catalog``: the same personalized catalog page, but its body comes from one
precompiled Jinja2 template fed with branches computed in Python (owned / affordable / short /
anonymous) instead of from the shortcode page and the theme's ``creditbutton`` template. Both
views then share everything else, so the comparison isolates the cost of shortcodes.

Run by gunicorn as ``plain_catalog:create()`` with ``--pythonpath bench``.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask_wtf.csrf import generate_csrf
from jinja2 import Environment as Jinja
from markupsafe import Markup

from shortcodes import parse_attrs
from shortcodes.context import Contact
from shortcodes.environment import walk
from shortcodes.host import create_app
from shortcodes.host.render import in_layout
from shortcodes.host.state import current_contact, host

BODY = Jinja(autoescape=True).from_string(
    """<p>Each item costs credits. When you own it, the button opens it; when your balance covers it, one
click unlocks it; otherwise it tells you how many credits you have and where to buy more.
An All Access membership opens everything.</p>
<p>You have {{ shown_balance }} credits.</p>
<ul class="catalog">
{% for item in items %}<li class="catalog-item">
<h2>{{ item.title }}</h2>
<p>{{ item.blurb }}</p>
{% if item.branch == "anonymous" %}<div class="creditbutton creditbutton-anonymous">
<span class="creditbutton-name">{{ item.name }}</span> <span class="creditbutton-cost">{{ item.cost }} credits</span>
<a class="creditbutton-login" href="/login">Log in to get {{ item.name }}</a>
</div>{% elif item.branch == "owned" %}<div class="creditbutton creditbutton-owned">
<a class="creditbutton-open" href="{{ item.url }}">Open {{ item.name }}</a>
</div>{% elif item.branch == "affordable" %}<div class="creditbutton creditbutton-affordable">
<form class="shortcode-action" method="post" action="/actions/{{ item.action }}"><input type="hidden" name="csrf_token" value="{{ csrf }}"><input type="hidden" name="token" value="{{ item.token }}"><input type="hidden" name="redirect_url" value="{{ item.url }}"><button type="submit" class="shortcode-action-button creditbutton-unlock">Unlock {{ item.name }} for {{ item.cost }} credits</button></form>
</div>{% else %}<div class="creditbutton creditbutton-short">
<span class="creditbutton-balance">You have {{ balance }} credits; {{ item.name }} costs {{ item.cost }}.</span>
<a class="creditbutton-buy-more" href="{{ item.buy_more }}">Buy more credits</a>
</div>{% endif %}
</li>
{% endfor %}</ul>"""
)


def products(app: Flask) -> list[dict[str, Any]]:
    """The catalog's products, read once from the creditbutton tags of ``catalog.md``."""
    state = app.extensions["shortcodes"]
    page = state.pages.get(state.pages.find("/catalog"), "/catalog")
    nodes = [n for n in walk(state.env.parse(page.source)) if n.name == "creditbutton"]
    titles = page.source.split("<h2>")[1:]
    items = []
    for node, chunk in zip(nodes, titles, strict=True):
        attrs = parse_attrs(node.body)
        title, _, rest = chunk.partition("</h2>")
        blurb = rest.split("<p>", 1)[1].split("</p>", 1)[0]
        items.append(
            {
                "title": Markup(title),  # noqa: S704 - the site author's own page HTML
                "blurb": Markup(blurb),  # noqa: S704 - the site author's own page HTML
                "name": attrs["name"],
                "cost": int(attrs["cost"]),
                "tag": attrs["tag_id"],
                "also": [t.strip() for t in attrs.get("unlocked_by", "").split(",") if t.strip()],
                "url": attrs["product_url"],
                "action": attrs["action_id"],
                "buy_more": attrs["buy_more_url"],
            }
        )
    return items


def branch(item: dict[str, Any], contact: Contact | None, balance: int) -> str:
    """Which of the four branches the contact sees, decided in Python."""
    if contact is None:
        return "anonymous"
    if contact.has_tag(item["tag"]) or any(contact.has_tag(t) for t in item["also"]):
        return "owned"
    return "affordable" if balance >= item["cost"] else "short"


def create() -> Flask:
    """The host app plus the plain view."""
    app = create_app()
    catalog = products(app)

    @app.get("/plain/catalog")
    def plain_catalog() -> tuple[str, int, dict[str, str]]:
        contact = current_contact()
        balance = (contact.balance("_Credits") or 0) if contact is not None else 0
        signer = host().signer
        items = []
        for item in catalog:
            chosen = branch(item, contact, balance)
            token = ""
            if chosen == "affordable" and contact is not None:
                params = {"cost": str(item["cost"]), "tag": item["tag"]}
                token = signer.sign_action(contact.id, item["action"], params)
            items.append({**item, "branch": chosen, "token": token})
        shown = balance if contact is not None else ""
        body = Markup(  # noqa: S704 - autoescaped Jinja2 output
            BODY.render(items=items, balance=balance, shown_balance=shown, csrf=generate_csrf())
        )
        html = in_layout("page", "Course catalog", body, contact, page=None)
        return html, 200, {"Cache-Control": "private, no-store"}

    return app

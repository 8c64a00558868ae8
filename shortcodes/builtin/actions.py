"""Builtins, action buttons: ``memb_actionset_button`` (alias ``buy_actionset_button``).

The button is a POST form to ``/actions/<action_id>`` with three fields the host reads:
``csrf_token`` (``ctx.csrf_token``), ``token`` (from ``ctx.signer.sign_action(contact_id,
action_id, params)``; it binds the contact, the actionset and every declared parameter such as
``cost`` and ``tag``, so a visitor cannot change them) and ``redirect_url`` (a path on this site;
the current page by default). Anonymous visitors get nothing. Rendering only signs: running the
actionset is the host's and the store's job.

:func:`action_form` is shared with theme templates (their ``action_button()``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote

from markupsafe import Markup

from shortcodes.context import Context
from shortcodes.errors import ActionButtonError
from shortcodes.membership import vocabulary as vocab
from shortcodes.nodes import ShortcodeNode
from shortcodes.registry import Attribute
from shortcodes.runtime import Shortcode

from .common import Report, given_attrs, local_url, static_value, text_of, value_offset

if TYPE_CHECKING:
    from shortcodes.environment import Environment

#: Where the form posts; the host routes ``POST /actions/<action_id>``.
ACTIONS_PATH: Final = "/actions/"

#: The button's own attributes; every other named attribute is an actionset parameter.
BUTTON_ATTRIBUTES: Final = (
    Attribute("action_id", str, required=True, doc="the actionset to run (defined by the site)"),
    Attribute("button_text", str, default="Submit", doc="the button's label"),
    Attribute("css_class", str, default="", doc="extra CSS classes for the button"),
    Attribute(
        "redirect_url",
        str,
        default="",
        doc="a path on this site to show afterwards (default: the current page)",
    ),
)
_OWN: Final = frozenset(a.name for a in BUTTON_ATTRIBUTES)


_CSS_CLASS: Final = re.compile(r"[^A-Za-z0-9_ -]+")

_FORM: Final = Markup(
    '<form class="shortcode-action" method="post" action="{action}">'
    '<input type="hidden" name="csrf_token" value="{csrf}">'
    '<input type="hidden" name="token" value="{token}">'
    '<input type="hidden" name="redirect_url" value="{redirect}">'
    '<button type="submit" class="{css}">{text}</button>'
    "</form>"
)


def action_form(
    ctx: Context,
    action_id: str,
    *,
    button_text: Any = "Submit",
    css_class: str = "",
    redirect_url: str = "",
    params: Mapping[str, Any] | None = None,
) -> Markup:
    """The POST form that runs ``action_id`` for the logged-in contact; empty for visitors.

    ``params`` are bound into the signed token as text. Raises ActionButtonError (or ValueError
    for a redirect that leaves the site) for a button that cannot work.
    """
    contact = ctx.contact
    if contact is None:
        return Markup()
    action_id = action_id.strip()
    if not vocab.accepts(vocab.name, action_id):
        raise ActionButtonError(
            f"action_id {action_id!r} is not an actionset name" if action_id else "needs action_id"
        )
    if ctx.signer is None:
        raise ActionButtonError("cannot sign the button: the context carries no signer")
    bound = {str(k): text_of(v) for k, v in (params or {}).items()}
    token = ctx.signer.sign_action(contact.id, action_id, bound)
    redirect = local_url(redirect_url, ctx.site.url) if redirect_url else ctx.request.path
    classes = " ".join(["shortcode-action-button", *_CSS_CLASS.sub("", css_class).split()])
    return _FORM.format(
        action=ACTIONS_PATH + quote(action_id, safe=""),
        csrf=ctx.csrf_token,
        token=token,
        redirect=redirect,
        css=classes,
        text=button_text,
    )


def actionset_button(sc: Shortcode, ctx: Context) -> Markup:
    """A POST form that runs an actionset for the logged-in contact; nothing for visitors."""
    if ctx.contact is None:
        return Markup()  # before reading attributes: visitors never see a notice either
    attrs = sc.attrs
    params = {k: v for k, v in attrs.items() if isinstance(k, str) and k not in _OWN}
    text = attrs.get("button_text", "Submit")
    return action_form(
        ctx,
        text_of(attrs.get("action_id", "")),
        button_text=text if isinstance(text, Markup) else text_of(text),
        css_class=text_of(attrs.get("css_class", "")),
        redirect_url=text_of(attrs.get("redirect_url", "")),
        params=params,
    )


def check_button(node: ShortcodeNode, report: Report) -> None:
    """Lint: action_id must be given and name an actionset; redirect_url must stay on the site."""
    given = given_attrs(node)
    if "action_id" not in given:
        report(
            node.offset,
            len(node.name) + 1,
            f'[{node.name}] needs action_id="name of an actionset"',
            "error",
        )
    else:
        value, item = given["action_id"]
        if static_value(value) and not vocab.accepts(vocab.name, value.strip()):
            report(
                value_offset(node, item),
                max(1, len(item.raw)),
                f"[{node.name}]: action_id {value!r} is not an actionset name",
                "error",
            )
    if "redirect_url" in given:
        value, item = given["redirect_url"]
        if value and static_value(value):
            try:
                local_url(value)
            except ValueError as error:
                report(
                    value_offset(node, item),
                    max(1, len(item.raw)),
                    f"[{node.name}]: redirect_url {error}",
                    "error",
                )
    for key, (_value, item) in given.items():
        if isinstance(key, int):
            report(
                node.body_offset + item.offset,
                len(item.source),
                f"[{node.name}]: positional value {item.source!r} is ignored",
                "warning",
            )


def register(env: Environment) -> None:
    """Register ``memb_actionset_button`` and ``buy_actionset_button``."""
    for name in ("memb_actionset_button", "buy_actionset_button"):
        # attributes=None: any other named attribute is an actionset parameter, so lint must
        # not call it unknown; the required action_id is checked by check_button instead.
        spec = env.add_shortcode(
            name,
            actionset_button,
            check=check_button,
            description="A POST form that runs an actionset for the logged-in contact "
            "(signed, single use); nothing for anonymous visitors. Other "
            "attributes (cost, tag ...) are the actionset's parameters, bound "
            "into the signed token.",
            example='[memb_actionset_button action_id="buy-course-b" cost="50" '
            'tag="Owns Course B" button_text="Unlock for 50 credits"]',
        )
        spec.extra["documented_attributes"] = BUTTON_ATTRIBUTES
        if name != "memb_actionset_button":
            spec.extra["alias_of"] = "memb_actionset_button"

"""Loyalty shortcodes: show a contact's pending, available, expiring and lifetime points and stage.

``[loyalty_points kind="available"]`` (``pending``, ``expiring`` = available points in lots that
expire within 30 days, ``lifetime``) and ``[loyalty_stage]`` read the points fields of the render
context's contact (``Points``, ``PointsPending``, ``PointsExpiring``, ``PointsLifetime``,
``Stage``). The host puts them there with :func:`with_points` when it builds the contact; for an
anonymous visitor, or a contact built without them, the shortcodes print nothing.
"""

from __future__ import annotations

from markupsafe import Markup, escape

from shortcodes.automations import loyalty
from shortcodes.automations.rules import LoyaltyConfig
from shortcodes.context import Contact, Context
from shortcodes.environment import Environment
from shortcodes.registry import Attribute
from shortcodes.runtime import Shortcode
from shortcodes.store import Store
from shortcodes.store.session import to_db_time

KINDS = {
    "available": "Points",
    "pending": "PointsPending",
    "expiring": "PointsExpiring",
    "lifetime": "PointsLifetime",
}


def _kind(text: str) -> str:
    value = text.strip().lower()
    if value not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {text!r}")
    return value


def loyalty_points(sc: Shortcode, ctx: Context) -> Markup:
    """The contact's points of one kind, as a number."""
    if ctx.contact is None:
        return Markup("")
    value = ctx.contact.field(KINDS[sc.attrs.get("kind", "available")])
    return Markup("") if value is None else escape(str(value))


def loyalty_stage(sc: Shortcode, ctx: Context) -> Markup:
    """The contact's stage (Bronze, Silver, Gold...)."""
    if ctx.contact is None:
        return Markup("")
    return escape(str(ctx.contact.field("Stage") or ""))


def register_loyalty_shortcodes(env: Environment) -> None:
    """Add ``loyalty_points`` and ``loyalty_stage`` to an environment."""
    env.add_shortcode(
        "loyalty_points",
        loyalty_points,
        attributes=[
            Attribute(
                "kind", _kind, default="available", doc="available, pending, expiring or lifetime"
            )
        ],
        description="The visitor's loyalty points of one kind.",
        example='[loyalty_points kind="pending"]',
    )
    env.add_shortcode(
        "loyalty_stage",
        loyalty_stage,
        attributes=[],
        description="The visitor's loyalty stage.",
        example="[loyalty_stage]",
    )


def with_points(store: Store, config: LoyaltyConfig, contact: Contact) -> Contact:
    """``contact`` with its points fields added (what the loyalty shortcodes read)."""
    now = to_db_time(store.clock())
    with store.engine.connect() as conn:
        extra = loyalty.fields(conn, config, contact.id, now)
    return Contact(contact.id, contact.email, contact.tags, {**contact.fields, **extra})

"""The drip test site: the automations test site plus a pottery course released by active time."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from shortcodes.store import schema as db
from tests.support.automations import SITE_TOML, Harness

DRIP_TAGS = """\
"Pottery Member" = "membership"
"Pottery Lesson 1" = "drip"
"Pottery Lesson 2" = "drip"
"Pottery Lesson 3" = "drip"
"Kiln Day" = "drip"
"""

DRIP_RULES = """
[[rules]]
name = "pottery"
description = "A lesson every two days of membership, and the kiln day on its date."
trigger = "tag_applied('Pottery Member')"

[rules.drip]
access = ["Pottery Member"]

[[rules.drip.items]]
name = "lesson-1"
tag = "Pottery Lesson 1"

[[rules.drip.items]]
name = "lesson-2"
after = "2d"
tag = "Pottery Lesson 2"

[[rules.drip.items]]
name = "lesson-3"
after = "4d"
tag = "Pottery Lesson 3"

[[rules.drip.items]]
name = "kiln-day"
on = 2026-01-20
tag = "Kiln Day"

[[rules]]
name = "lesson-2-email"
trigger = "unlocked('lesson-2')"
steps = [{ do = "send_email", template = "lesson-unlocked", subject = "Lesson 2 is open" }]
"""

DRIP_SITE_TOML = SITE_TOML.replace("[tags]\n", "[tags]\n" + DRIP_TAGS, 1) + DRIP_RULES

_r, _e = db.drip_releases, db.events


def releases(h: Harness, contact_id: int | None = None) -> list[tuple[int, str]]:
    """(contact, item) of every release, by contact and release time."""
    query = select(_r.c.contact_id, _r.c.item).order_by(_r.c.contact_id, _r.c.released_at)
    if contact_id is not None:
        query = query.where(_r.c.contact_id == contact_id)
    with h.store.engine.connect() as conn:
        return [(int(c), str(i)) for c, i in conn.execute(query)]


def drip_events(h: Harness, contact_id: int, kind: str | None = None) -> list[dict[str, Any]]:
    """The data of the contact's drip events (of one kind), oldest first."""
    kinds = [kind] if kind else ["drip_started", "drip_paused", "drip_resumed", "unlocked"]
    query = (
        select(_e.c.kind, _e.c.data)
        .where((_e.c.contact_id == contact_id) & _e.c.kind.in_(kinds))
        .order_by(_e.c.id)
    )
    with h.store.engine.connect() as conn:
        return [{"kind": k, **dict(d)} for k, d in conn.execute(query)]


def active_time(h: Harness, contact_id: int, rule: str = "pottery") -> timedelta:
    """The contact's banked active time in a drip."""
    d = db.drip_states
    query = select(d.c.active_us).where((d.c.rule == rule) & (d.c.contact_id == contact_id))
    with h.store.engine.connect() as conn:
        return timedelta(microseconds=int(conn.execute(query).scalar_one()))


def tag_events(h: Harness, contact_id: int, tag: str) -> int:
    """How many times the tag was applied to the contact."""
    query = select(_e.c.data).where((_e.c.contact_id == contact_id) & (_e.c.kind == "tag_applied"))
    with h.store.engine.connect() as conn:
        return sum(1 for data in conn.execute(query).scalars() if data.get("tag") == tag)

"""Automations test helpers: the test site, and a harness that drains the worker."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Table, func, select

from shortcodes.automations import AutomationConfig, PassStats, Worker
from shortcodes.store import Store
from shortcodes.store import schema as db
from shortcodes.store.events import record_event
from tests.support.clock import MovableClock
from tests.support.db import buyer, row_counts

SITE_TOML = """\
[site]
name = "Automations test site"

[webhooks]
secret = "automation-test-secret"

[credits]
fields = ["_Credits"]

[tags]
"Subscriber" = "membership"
"All Access" = "membership"
"Payment Problem" = "billing"
"Customer" = "billing"
"Owns Drip Course" = "product"
"Drip Day 1" = "drip"
"Drip Day 2" = "drip"
"Drip Day 3" = "drip"
"Drip Day 4" = "drip"
"Drip Day 5" = "drip"
"Borrowed Field Guide" = "library"
"Lock Field Guide" = "library"
"Return Field Guide" = "library"
"Owns Course B" = "product"
"Owns Course C" = "product"
"Course C Access" = "access"
"Big Spender" = "loyalty"
"Regular" = "loyalty"

[products.monthly]
title = "Monthly membership"
tag = "Subscriber"

[products.all-access]
title = "All-access membership"
tag = "Customer"

[products.course-c-4m]
title = "Course C, four months"
tag = "Customer"

[loyalty]
available_after = "14d"
expire_after = "1y"
stages = { Bronze = 0, Silver = 200, Gold = 400 }

[actionsets.borrow-field-guide]
title = "The Field Guide (borrowed)"
params.cost = { type = "int", default = 1 }
owns = "Borrowed Field Guide"
steps = [
  { do = "debit", field = "_Credits", amount = "$cost" },
  { do = "apply_tag", tag = "Borrowed Field Guide" },
  { do = "apply_tag", tag = "Lock Field Guide" },
]

[actionsets.return-field-guide]
title = "Check in the Field Guide"
steps = [{ do = "apply_tag", tag = "Return Field Guide" }]

[actionsets.buy-course-b]
title = "Course B"
params.cost = { type = "int", default = 50 }
owns = "Owns Course B"
steps = [
  { do = "debit", field = "_Credits", amount = "$cost" },
  { do = "apply_tag", tag = "Owns Course B" },
]

[[rules]]
name = "monthly-credits"
description = "Each successful monthly charge deposits 50 credits and says so by email."
trigger = "payment_succeeded(monthly)"
steps = [
  { do = "credit", field = "_Credits", amount = 50 },
  { do = "send_email", template = "monthly-credits", subject = "Your monthly credits" },
]

[[rules]]
name = "drip-course"
trigger = "tag_applied('Owns Drip Course')"
steps = [
  { do = "apply_tag", tag = "Drip Day 1" },
  { do = "wait", for = "1d" },
  { do = "apply_tag", tag = "Drip Day 2" },
  { do = "wait", for = "24h" },
  { do = "apply_tag", tag = "Drip Day 3" },
  { do = "wait", for = "1d" },
  { do = "apply_tag", tag = "Drip Day 4" },
  { do = "wait", for = "1d" },
  { do = "apply_tag", tag = "Drip Day 5" },
]

[[rules]]
name = "revoke-on-failed-payment"
trigger = "payment_failed"
steps = [
  { do = "apply_tag", tag = "Payment Problem" },
  { do = "remove_tag", tag = "All Access" },
  { do = "remove_tag", tag = "Subscriber" },
]

[[rules]]
name = "revoke-on-refund"
trigger = { on = "refunded" }
steps = [
  { do = "apply_tag", tag = "Payment Problem" },
  { do = "remove_tag", tag = "All Access" },
  { do = "remove_tag", tag = "Subscriber" },
]

[[rules]]
name = "lending-lock"
trigger = "tag_applied('Lock Field Guide')"
steps = [{ do = "remove_tag_after", tag = "Lock Field Guide", after = "14d" }]

[[rules]]
name = "lending-check-in"
trigger = "tag_applied('Return Field Guide')"
conditions = "has_tag('Borrowed Field Guide') and not has_tag('Lock Field Guide')"
steps = [
  { do = "credit", field = "_Credits", amount = 1 },
  { do = "remove_tag", tag = "Borrowed Field Guide" },
  { do = "remove_tag", tag = "Return Field Guide" },
  { do = "send_email", template = "checked-in" },
]
otherwise = [
  { do = "remove_tag", tag = "Return Field Guide" },
  { do = "send_email", template = "check-in-refused" },
]

[[rules]]
name = "all-access"
trigger = "payment_succeeded(all-access)"
steps = [{ do = "grant", tag = "All Access", for = "35d" }]

[[rules]]
name = "course-c-four-months"
trigger = "payment_succeeded(course-c-4m)"
steps = [{ do = "grant", tag = "Course C Access", for = "4mo" }]

[[rules]]
name = "points-course-b"
trigger = "tag_applied('Owns Course B')"
steps = [{ do = "award_points", points = 150, reason = "bought Course B" }]

[[rules]]
name = "points-course-c"
trigger = "tag_applied('Owns Course C')"
steps = [{ do = "award_points", points = 100, reason = "bought Course C" }]

[[rules]]
name = "big-spender"
trigger = "field_above(points, 200)"
steps = [
  { do = "apply_tag", tag = "Big Spender" },
  { do = "send_email", template = "big-spender" },
]

[[rules]]
name = "stage-email"
trigger = "stage_changed"
steps = [{ do = "send_email", template = "stage-changed" }]

[[rules]]
name = "referral"
trigger = "referral_approved"
steps = [{ do = "award_points", points = 50, to = "both", reason = "referral" }]

[[rules]]
name = "charge"
trigger = "webhook('charge')"
steps = [
  { do = "debit", field = "_Credits", amount = 10 },
  { do = "apply_tag", tag = "Regular" },
]

[[rules]]
name = "welcome-back"
trigger = "login"
conditions = "not has_tag('Regular')"
steps = [{ do = "apply_tag", tag = "Regular" }]
"""


@dataclass
class Harness:
    """A store, its automations config, the clock and an instance folder, with shortcuts."""

    store: Store
    config: AutomationConfig
    clock: MovableClock
    instance: Path

    def worker(self, **kw: Any) -> Worker:
        """A worker on this store."""
        return Worker(self.store, self.config, self.instance, **kw)

    def drain(self) -> PassStats:
        """Run worker passes at the current time until nothing is left to do."""
        return self.worker().run(until_idle=True, sleep=lambda _s: None, max_passes=500)

    def advance(self, **delta: float) -> PassStats:
        """Move the clock, then drain."""
        self.clock.advance(**delta)
        return self.drain()

    def contact(self, email: str, credits: int = 0) -> int:
        """A new contact with an opening balance."""
        return buyer(self.store, email, credits, name=email.split("@")[0].title())

    def event(self, kind: str, contact_id: int, data: Mapping[str, Any]) -> None:
        """Record an event as the host's webhooks would (in its own transaction)."""
        self.store.run_in_transaction(lambda tx: record_event(tx, kind, contact_id, data))

    def tags(self, contact_id: int) -> set[str]:
        """The names of the tags the contact holds now."""
        return {t.name for t in self.store.get_contact(contact_id).tags}

    def outbox(self, kind: str = "email") -> list[Any]:
        """Outbox rows of one kind, oldest first."""
        o = db.outbox
        with self.store.engine.connect() as conn:
            return list(conn.execute(select(o).where(o.c.kind == kind).order_by(o.c.id)))

    def emails(self, template: str | None = None) -> list[dict[str, Any]]:
        """Queued email payloads (optionally of one template)."""
        found = [dict(r.payload) for r in self.outbox("email")]
        return [p for p in found if template is None or p["template"] == template]

    def runs(self, rule: str) -> list[Any]:
        """The runs of one rule, oldest first."""
        r = db.auto_runs
        with self.store.engine.connect() as conn:
            return list(conn.execute(select(r).where(r.c.rule == rule).order_by(r.c.id)))

    def count(self, table: Table) -> int:
        """Rows in a table."""
        return row_counts(self.store, table)[table.name]

    def count_steps_done(self, rule: str | None = None) -> int:
        """Steps that are done, of one rule's runs or of every run."""
        s, r = db.auto_steps, db.auto_runs
        done = s.c.status == "done"
        query = select(func.count()).select_from(s.join(r, s.c.run_id == r.c.id))
        query = query.where(done if rule is None else done & (r.c.rule == rule))
        with self.store.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())
